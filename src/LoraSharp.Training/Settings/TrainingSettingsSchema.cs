// The one list of training settings. Each TrainingSettings property (its C# type and default) appears here exactly
// once with its CLI option, form group, range or choices and help; from this list come `lorasharp train`'s options,
// the web training form, the checks every settings path goes through (settings files, the web's JSON body, the
// command line, --copy-from) and the settings table of docs/training.md (a test compares them). Cross-field rules
// (batch_size a multiple of micro_batch_size, ...) are TrainingSettings.Validate's.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LoraSharp.Core;
using LoraSharp.Core.Optim;
using LoraSharp.Models.Llama;
using LoraSharp.Training.Schedules;

namespace LoraSharp.Training.Settings;

/// <summary>Every training setting with its metadata, and the checks and texts made from them.</summary>
public static class TrainingSettingsSchema
{
    private const string NonNegative = "[0, inf)";
    private const string Positive = "(0, inf)";
    private const string AtLeastOne = "[1, inf)";
    private const string Fraction = "[0, 1)";

    /// <summary>Every setting of <see cref="TrainingSettings"/>, in form order.</summary>
    public static IReadOnlyList<SettingInfo> All { get; } =
    [
        new("lora_name", "--name", "adapter", SettingKind.Text, "Adapter name (lora_name): the output folder."),
        new("always_override", "--overwrite", "adapter", SettingKind.Boolean, "Replace an existing adapter folder of the same name once the new one is complete (always_override)."),

        new("dataset", "--dataset", "data", SettingKind.Dataset, "Formatted or chat dataset (JSON array or JSONL)."),
        new("format", "--format", "data", SettingKind.Format, "Format file or name (alpaca, alpaca-chatbot, ChatML, llama2-chat, vicuna) or 'chat'."),
        new("chat_template", "--chat-template", "data", SettingKind.Text, "Chat datasets: template name (chatml, llama3, ...), a .jinja file, or Jinja text.", true)
            { DefaultText = "the model's own chat_template (ChatML if it has none)" },
        new("train_on_inputs", "--train-on-inputs", "data", SettingKind.Boolean, "Chat datasets: train on every token, not only the assistant replies.", true),
        new("raw_text_file", "--raw-text-file", "data", SettingKind.Dataset, "Raw text: a .txt file or a folder of them."),
        new("eval_dataset", "--eval-dataset", "data", SettingKind.Dataset, "Validation dataset file."),
        new("eval_split", "--eval-split", "data", SettingKind.Number, "Hold out this fraction for validation when no eval dataset is given.") { Range = Fraction },
        new("cutoff_len", "--cutoff-len", "data", SettingKind.Integer, "Longest sequence in tokens.") { Range = "[2, inf)" },
        new("train_only_after", "--train-only-after", "data", SettingKind.Text, "Train only on text after this marker (e.g. '### Response:')."),
        new("add_eos_token", "--add-eos-token", "data", SettingKind.Boolean, "Add EOS at the end of each block/sample."),
        new("excess_length", "--excess-length", "data", SettingKind.Choice, "Samples longer than cutoff_len: drop or truncate.", true, ["drop", "truncate"]),
        new("packing", "--packing", "data", SettingKind.Boolean, "Pack short samples into cutoff-length sequences.", true),
        new("overlap_len", "--overlap-len", "raw_text", SettingKind.Integer, "Raw text: tokens shared by consecutive chunks.") { Range = NonNegative },
        new("newline_favor_len", "--newline-favor-len", "raw_text", SettingKind.Integer, "Raw text: prefer cuts at newlines within N characters.") { Range = NonNegative },
        new("hard_cut_string", "--hard-cut-string", "raw_text", SettingKind.Text, "Raw text: no chunk spans this string."),
        new("min_chars", "--min-chars", "raw_text", SettingKind.Integer, "Raw text: ignore blocks of at most N characters.") { Range = NonNegative },

        new("lora_rank", "--lora-rank", "lora", SettingKind.Integer, "LoRA rank r.") { Range = AtLeastOne, CliAliases = ["-r"] },
        new("lora_alpha", "--lora-alpha", "lora", SettingKind.Number, "LoRA alpha; the update is scaled by alpha / r.") { Range = Positive, DefaultText = "2 x lora_rank" },
        new("lora_dropout", "--lora-dropout", "lora", SettingKind.Number, "Dropout on the adapter's input.") { Range = Fraction },
        new("target_modules", "--target-modules", "lora", SettingKind.List, "Projections to adapt: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj, or all-linear (phi3: qkv_proj o_proj gate_up_proj down_proj).",
            false, [.. LlamaLayer.ProjectionNames, "all-linear", "qkv_proj", "gate_up_proj"]) { DefaultText = "the family's PEFT default: q_proj v_proj (phi3: qkv_proj)" },
        new("layers_to_transform", "--layers", "lora", SettingKind.IntegerList, "Layers to adapt.", true) { DefaultText = "all" },
        new("rank_pattern", "--rank-pattern", "lora", SettingKind.Pattern, "Per-module ranks (PEFT rank_pattern), e.g. q_proj=4,down_proj=16.", true),
        new("alpha_pattern", "--alpha-pattern", "lora", SettingKind.Pattern, "Per-module alphas (PEFT alpha_pattern), e.g. q_proj=8.", true),
        new("use_rslora", "--use-rslora", "lora", SettingKind.Boolean, "Scale by alpha/sqrt(r) (rsLoRA).", true),
        new("init_lora_weights", "--init-lora-weights", "lora", SettingKind.Choice, "default (Kaiming-uniform A, zero B; PEFT's true), gaussian, none (A and B both random, PEFT's false; not the base model at step 0), " +
            "pissa (A, B from the top-r SVD of W, trained against the residual W - sBA; exact SVD, slow beyond ~1k hidden), pissa_niter_K (randomized SVD with K subspace iterations, any K >= 1) " +
            "or olora (A, B from the QR of W). PiSSA/OLoRA need f32 base weights; the finished adapter is written converted to a plain rank-2r LoRA on the original base (docs/methods.md).",
            true, ["default", "gaussian", "none", "pissa", "pissa_niter_4", "olora"])
        {
            Parser = name =>
            {
                string c = Models.Lora.LoraSettings.CanonicalInit(name);
                if (c is not ("default" or "gaussian" or "none") && !Models.Lora.LoraSettings.IsBaseDerivedInit(name))
                    throw new ArgumentException($"'{name}' is not one of {Models.Lora.LoraSettings.InitNames}.");
            },
        },
        new("use_dora", "--use-dora", "lora", SettingKind.Boolean, "DoRA: learn a magnitude per output row and the direction with LoRA (PEFT use_dora).", true),
        new("loraplus_lr_ratio", "--loraplus-lr-ratio", "lora", SettingKind.Number, "LoRA+: lora_B learns at this multiple of the learning rate (paper: 16; 0 = off).", true) { Range = NonNegative },
        new("neftune_noise_alpha", "--neftune-noise-alpha", "lora", SettingKind.Number, "NEFTune: uniform noise alpha/sqrt(L*d) on the input embeddings while training (paper: 5; 0 = off).", true) { Range = NonNegative },
        new("full_fine_tuning", "--full-fine-tuning", "lora", SettingKind.Boolean, "Train every weight instead of an adapter.", true),
        new("modules_to_save", "--modules-to-save", "lora", SettingKind.List,
            "Train these in full beside the adapter and save them in it (PEFT modules_to_save): embed_tokens, lm_head. Tied embeddings are untied, as PEFT does.",
            true, LlamaModel.SaveableModules) { DefaultText = "none" },

        new("micro_batch_size", "--micro-batch-size", "schedule", SettingKind.Integer, "Sequences per forward/backward.") { Range = AtLeastOne },
        new("batch_size", "--batch-size", "schedule", SettingKind.Integer, "Sequences per optimizer step (gradient accumulation = batch / micro).") { Range = AtLeastOne },
        new("epochs", "--epochs", "schedule", SettingKind.Number, "Passes over the data.") { Range = NonNegative },
        new("max_steps", "--max-steps", "schedule", SettingKind.Integer, "Stop after N optimizer steps (overrides epochs; 0 = use epochs).") { Range = NonNegative },
        new("learning_rate", "--learning-rate", "schedule", SettingKind.Number, "Peak learning rate.") { Range = Positive, CliAliases = ["--lr"] },
        new("lr_scheduler_type", "--lr-scheduler", "schedule", SettingKind.Choice, "Learning-rate schedule.", false, LearningRateSchedule.Names),
        new("warmup_steps", "--warmup-steps", "schedule", SettingKind.Integer,
            "Warm-up steps; when > 0 they win over warmup_ratio (as in transformers).") { Range = NonNegative, DefaultText = "100 unless warmup_ratio is set" },
        new("warmup_ratio", "--warmup-ratio", "schedule", SettingKind.Number, "Warm-up as a fraction of all steps, used when warmup_steps is not set (or 0).", true) { Range = Fraction },
        new("optimizer", "--optimizer", "schedule", SettingKind.Choice, "Optimizer (HF optim names; adamw_torch, adamw_hf, lion_32bit and sophiag are accepted too).", false, OptimizerFactory.Names)
            { Parser = name => OptimizerFactory.Create(name) },
        new("weight_decay", "--weight-decay", "schedule", SettingKind.Number, "Weight decay.", true) { Range = NonNegative },
        new("momentum", "--momentum", "schedule", SettingKind.Number, "SGD momentum.", true) { Range = Fraction },
        new("nesterov", "--nesterov", "schedule", SettingKind.Boolean, "SGD Nesterov momentum.", true),
        new("adam_beta1", "--adam-beta1", "schedule", SettingKind.Number, "beta1 of adamw, adam, lion and sophia (momentum; not used by adafactor).", true)
            { Range = Fraction, DefaultText = "the optimizer's: 0.9; sophia 0.965" },
        new("adam_beta2", "--adam-beta2", "schedule", SettingKind.Number, "beta2 of adamw, adam, lion and sophia (second moment; sophia: its Hessian EMA).", true)
            { Range = Fraction, DefaultText = "the optimizer's: 0.999; lion and sophia 0.99" },
        new("sophia_rho", "--sophia-rho", "schedule", SettingKind.Number, "Sophia's gamma (the authors' rho): step = lr * clip(m / max(rho * h, eps), 1).", true) { Range = Positive },
        new("hessian_update_interval", "--hessian-update-interval", "schedule", SettingKind.Integer, "Sophia: re-estimate the Hessian (GNB, sampled labels) every N steps.", true) { Range = AtLeastOne },
        new("max_grad_norm", "--max-grad-norm", "schedule", SettingKind.Number, "Clip gradients to this global norm (0 = off).", true) { Range = NonNegative },
        new("objective", "--objective", "schedule", SettingKind.Choice,
            "sft (next-token loss), dpo (preference rows prompt/chosen/rejected; reference = the base with the adapter off) or orpo (preference rows, no reference).",
            true, ["sft", "dpo", "orpo"]),
        new("beta", "--beta", "schedule", SettingKind.Number, "DPO's beta.", true) { Range = Positive },
        new("dpo_loss", "--dpo-loss", "schedule", SettingKind.Choice, "DPO loss: sigmoid or ipo.", true, ["sigmoid", "ipo"]),
        new("orpo_lambda", "--orpo-lambda", "schedule", SettingKind.Number, "ORPO's lambda: weight of the odds-ratio term.", true) { Range = NonNegative },

        new("eval_steps", "--eval-steps", "control", SettingKind.Integer, "Evaluate every N steps (0 = only at the end).") { Range = NonNegative },
        new("save_steps", "--save-steps", "control", SettingKind.Integer, "Save checkpoint-N every N steps (0 = never).") { Range = NonNegative },
        new("stop_at_loss", "--stop-at-loss", "control", SettingKind.Number, "Stop when the training loss reaches this value (0 = off).") { Range = NonNegative },
        new("early_stopping_patience", "--early-stopping-patience", "control", SettingKind.Integer, "Stop after N evaluations without a better validation loss (0 = off).", true) { Range = NonNegative },
        new("seed", "--seed", "control", SettingKind.Integer, "Seed for init, shuffling and dropout.", true),
        new("gradient_checkpointing", "--gradient-checkpointing", "control", SettingKind.Boolean, "Recompute activations in the backward (less memory).", true),
        new("base_dtype", "--base-dtype", "control", SettingKind.Choice,
            "Base weights as f32, bf16, f16, q8_0, q4_0, nf4 (QLoRA: kept compressed, decoded inside the matmuls) or stored " +
            "(the file's own types). auto: a Hugging Face folder's bf16/f16 matrices as stored (exact), f32 otherwise; GGUF files as stored.", true,
            ["auto", "f32", "bf16", "f16", "q8_0", "q4_0", "nf4", "stored"]) { DefaultText = "auto", Parser = name => Models.Loading.BaseStorageRules.Parse(name) },
        new("double_quant", "--double-quant", "control", SettingKind.Boolean,
            "With base dtype nf4: quantize the NF4 block scales to 8 bits too (QLoRA double quantization, 4.13 instead of 4.5 bits a weight).", true),
    ];

    private static readonly Dictionary<string, SettingInfo> ByName = All.ToDictionary(s => s.Name, StringComparer.Ordinal);

    /// <summary>The setting <paramref name="name"/> (snake_case); throws for an unknown name.</summary>
    public static SettingInfo Get(string name) => ByName.TryGetValue(name, out var s) ? s
        : throw new ArgumentException($"'{name}' is not a training setting; see TrainingSettingsSchema.All.", nameof(name));

    /// <summary>The help of setting <paramref name="name"/> (snake_case); throws for an unknown name.</summary>
    public static string For(string name) => Get(name).Help;

    private static readonly Lazy<JsonObject> DefaultJson = new(() => (JsonObject)JsonNode.Parse(TrainingSettingsFile.ToJson(new TrainingSettings()))!);

    /// <summary>The defaults, as training_parameters.json writes them (a copy).</summary>
    public static JsonObject Defaults() => (JsonObject)DefaultJson.Value.DeepClone();

    /// <summary>How the default of <paramref name="s"/> reads in help texts and docs.</summary>
    public static string DefaultText(SettingInfo s) => s.DefaultText ?? Display(DefaultJson.Value[s.Name]);

    /// <summary>The CLI option's description: the help and the default.</summary>
    public static string Describe(SettingInfo s)
    {
        string def = DefaultText(s);
        string choices = s.Kind == SettingKind.Choice ? $" One of: {string.Join(", ", s.Choices!)}." : "";
        return $"{s.Help}{choices}" + (def.Length == 0 || s.Kind is SettingKind.Dataset or SettingKind.Format ? "" : $" (default {def})");
    }

    /// <summary>A value as docs and help show it: none, true/false, numbers, words, items joined by spaces.</summary>
    public static string Display(JsonNode? v) => v switch
    {
        null => "none",
        JsonArray a => a.Count == 0 ? "none" : string.Join(" ", a.Select(Display)),
        JsonObject o => o.Count == 0 ? "{}" : string.Join(",", o.Select(kv => $"{kv.Key}={Display(kv.Value)}")),
        JsonValue x when x.TryGetValue(out string? text) => text.Replace("\n", "\\n"),
        JsonValue x when x.TryGetValue(out bool b) => b ? "true" : "false",
        JsonValue x when x.TryGetValue(out double d) => d.ToString("G", CultureInfo.InvariantCulture),
        _ => v.ToJsonString(),
    };

    /// <summary>
    /// Checks the keys and value types of settings JSON before it is read: an unknown key names the closest known one,
    /// a value of the wrong type or a choice not on the list says which values are allowed. <paramref name="source"/>
    /// names the file or front end in the message.
    /// </summary>
    public static void CheckJson(JsonObject json, string source)
    {
        foreach (var (key, value) in json)
        {
            if (!ByName.TryGetValue(key, out var s))
                throw new UserErrorException($"{source}: '{key}' is not a training setting{Suggest(key)}. Valid keys are the snake_case names in " +
                                                    $"{TrainingSettingsFile.ParametersFileName} (see docs/training.md).");
            CheckValue(s, value, source);
        }
    }

    private static void CheckValue(SettingInfo s, JsonNode? value, string source)
    {
        string Bad(string expected) => $"{source}: {s.Name}: {expected}, not {value?.ToJsonString() ?? "null"}.";
        bool nullable = DefaultJson.Value[s.Name] is null || s.Kind is SettingKind.Text or SettingKind.Dataset or SettingKind.Format or SettingKind.IntegerList;
        if (value is null)
        {
            if (!nullable) throw new UserErrorException(Bad("a value is required"));
            return;
        }
        switch (s.Kind)
        {
            case SettingKind.Integer:
                if (!(value.GetValueKind() == JsonValueKind.Number && AsDouble(value) is var di && di == Math.Floor(di) && Math.Abs(di) <= int.MaxValue))
                    throw new UserErrorException(Bad("expected a whole number"));
                break;
            case SettingKind.Number:
                // 1e400 reads as infinity: refused here, before it can reach a setting
                if (!(value is JsonValue n && n.GetValueKind() == JsonValueKind.Number && double.IsFinite(AsDouble(value))))
                    throw new UserErrorException(Bad("expected a finite number"));
                break;
            case SettingKind.Boolean:
                if (value.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
                    throw new UserErrorException(Bad("expected true or false"));
                break;
            case SettingKind.Choice:
                if (value.GetValueKind() != JsonValueKind.String) throw new UserErrorException(Bad($"expected one of {string.Join(", ", s.Choices!)}"));
                CheckChoice(s, value.GetValue<string>(), source);
                break;
            case SettingKind.List:
                if (value is not JsonArray list || list.Any(x => x?.GetValueKind() != JsonValueKind.String))
                    throw new UserErrorException(Bad("expected a list of names"));
                break;
            case SettingKind.IntegerList:
                if (value is not JsonArray ints || ints.Any(x => x?.GetValueKind() != JsonValueKind.Number))
                    throw new UserErrorException(Bad("expected a list of whole numbers"));
                break;
            case SettingKind.Pattern:
                if (value is not JsonObject map || map.Any(kv => kv.Value?.GetValueKind() != JsonValueKind.Number))
                    throw new UserErrorException(Bad("expected an object of module: number"));
                break;
            default:
                if (value.GetValueKind() != JsonValueKind.String) throw new UserErrorException(Bad("expected text"));
                break;
        }
    }

    private static void CheckChoice(SettingInfo s, string value, string source)
    {
        if (s.Parser != null)
        {
            try { s.Parser(value); }
            catch (ArgumentException) { throw new UserErrorException($"{source}: {s.Name}: '{value}' is not one of {string.Join(", ", s.Choices!)}."); }
        }
        else if (!s.Choices!.Contains(value, StringComparer.OrdinalIgnoreCase))
        {
            throw new UserErrorException($"{source}: {s.Name}: '{value}' is not one of {string.Join(", ", s.Choices!)}.");
        }
    }

    /// <summary>Checks every setting's range and choices; throws a UserErrorException naming the setting.</summary>
    public static void CheckValues(TrainingSettings settings)
    {
        var json = (JsonObject)JsonNode.Parse(TrainingSettingsFile.ToJson(settings))!;
        foreach (var s in All)
        {
            var value = json[s.Name];
            if (value is null) continue;
            if (s.Kind == SettingKind.Choice) CheckChoice(s, value.GetValue<string>(), "settings");
            if (s.Kind is SettingKind.Number or SettingKind.Integer && value.GetValueKind() != JsonValueKind.Number)
                throw new UserErrorException($"{s.Name}: must be a finite number (is {Display(value)}).");   // NaN or infinity set in code
            if (s.Range is { } range && value.GetValueKind() == JsonValueKind.Number && !InRange(AsDouble(value), range))
                throw new UserErrorException($"{s.Name}: must be in {range} (is {Display(value)}).");
        }
    }

    // A JSON number whichever CLR type holds it (an int from the CLI, a JsonElement from a file).
    private static double AsDouble(JsonNode number) => double.Parse(number.ToJsonString(), CultureInfo.InvariantCulture);

    /// <summary>True when <paramref name="x"/> lies in <paramref name="range"/> ("[a, b)", "(a, inf)", ...).</summary>
    public static bool InRange(double x, string range)
    {
        if (!double.IsFinite(x)) return false;
        var parts = range[1..^1].Split(',', StringSplitOptions.TrimEntries);
        double lo = double.Parse(parts[0], CultureInfo.InvariantCulture);
        double hi = parts[1] == "inf" ? double.PositiveInfinity : double.Parse(parts[1], CultureInfo.InvariantCulture);
        bool aboveLo = range[0] == '[' ? x >= lo : x > lo;
        bool belowHi = range[^1] == ']' ? x <= hi : x < hi;
        return aboveLo && belowHi;
    }

    // "lora_rnak" -> " (did you mean 'lora_rank'?)": the known name at the smallest edit distance, if it is close.
    private static string Suggest(string key)
    {
        var best = All.Select(s => (s.Name, D: EditDistance(key, s.Name))).MinBy(x => x.D);
        return best.D <= Math.Max(2, key.Length / 3) ? $" (did you mean '{best.Name}'?)" : "";
    }

    private static int EditDistance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int next = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = row[j];
                row[j] = next;
            }
        }
        return row[b.Length];
    }

    /// <summary>The settings table of docs/training.md (between its settings-table markers).</summary>
    public static string MarkdownTable()
    {
        var lines = new List<string> { "| setting | CLI | type | default | allowed | meaning |", "| --- | --- | --- | --- | --- | --- |" };
        foreach (var s in All)
        {
            string cli = string.Join(" ", new[] { s.Cli }.Concat(s.CliAliases).Select(c => $"`{c}`"));
            string allowed = s.Kind is SettingKind.Choice or SettingKind.List ? string.Join(", ", s.Choices!) : s.Range ?? "";
            lines.Add($"| {s.Name} | {cli} | {KindText(s.Kind)} | {DefaultText(s).Replace("|", "\\|")} | {allowed} | {s.Help.Replace("|", "\\|")} |");
        }
        return string.Join("\n", lines) + "\n";
    }

    private static string KindText(SettingKind k) => k switch
    {
        SettingKind.Integer => "integer",
        SettingKind.Number => "number",
        SettingKind.Boolean => "boolean",
        SettingKind.Choice => "choice",
        SettingKind.List => "list",
        SettingKind.IntegerList => "integers",
        SettingKind.Pattern => "module=number",
        SettingKind.Dataset => "file",
        SettingKind.Format => "format",
        _ => "text",
    };
}
