// Every setting of a training run, named as text-generation-webui's training tab and Hugging Face / PEFT name them
// (snake_case in training_parameters.json and config files, PascalCase here). Defaults are the webui's. Each property is
// the one definition of its setting's type and default; Settings/TrainingSettingsSchema holds the rest (CLI option,
// range, choices, help) and a test checks that both list the same settings.
using System.Text.Json.Serialization;
using LoraSharp.Models.Lora;
using LoraSharp.Training.Data;

namespace LoraSharp.Training;

/// <summary>Hyperparameters and data settings of one LoRA (or full) fine-tuning run.</summary>
public sealed record TrainingSettings
{
    // ---- identity and output
    /// <summary>Adapter name: the output folder's name.</summary>
    [JsonPropertyName("lora_name")] public string LoraName { get; init; } = "lora";
    /// <summary>Replace an existing output folder of the same name.</summary>
    [JsonPropertyName("always_override")] public bool AlwaysOverride { get; init; }

    // ---- data
    /// <summary>Formatted or chat dataset (JSON array or JSONL).</summary>
    [JsonPropertyName("dataset")] public string? Dataset { get; init; }
    /// <summary>Validation dataset file.</summary>
    [JsonPropertyName("eval_dataset")] public string? EvalDataset { get; init; }
    /// <summary>Format file for a formatted dataset (alpaca-format.json, ...), or "chat" for chat datasets.</summary>
    [JsonPropertyName("format")] public string? Format { get; init; }
    /// <summary>Chat datasets: a template name (chatml, llama2, llama3, mistral, alpaca, zephyr, phi3), a .jinja file or a
    /// Jinja template; null: the model's own chat_template (tokenizer_config.json / GGUF), else chatml.</summary>
    [JsonPropertyName("chat_template")] public string? ChatTemplate { get; init; }
    /// <summary>Chat datasets: train on every token (prompts too), not only the assistant replies (axolotl's name).</summary>
    [JsonPropertyName("train_on_inputs")] public bool TrainOnInputs { get; init; }
    /// <summary>Raw text file or folder of .txt files.</summary>
    [JsonPropertyName("raw_text_file")] public string? RawTextFile { get; init; }
    /// <summary>Longest sequence in tokens.</summary>
    [JsonPropertyName("cutoff_len")] public int CutoffLen { get; init; } = 256;
    /// <summary>Raw text: tokens shared by consecutive chunks.</summary>
    [JsonPropertyName("overlap_len")] public int OverlapLen { get; init; } = 128;
    /// <summary>Raw text: prefer cutting at a newline within this many characters.</summary>
    [JsonPropertyName("newline_favor_len")] public int NewlineFavorLen { get; init; } = 128;
    /// <summary>Raw text: no chunk spans this string.</summary>
    [JsonPropertyName("hard_cut_string")] public string HardCutString { get; init; } = "\n\n\n";
    /// <summary>Raw text: ignore blocks of at most this many characters.</summary>
    [JsonPropertyName("min_chars")] public int MinChars { get; init; }
    /// <summary>Add EOS at the end of each raw-text block / formatted sample.</summary>
    [JsonPropertyName("add_eos_token")] public bool AddEosToken { get; init; }
    /// <summary>Formatted data: train only on text after this marker (e.g. "### Response:").</summary>
    [JsonPropertyName("train_only_after")] public string? TrainOnlyAfter { get; init; }
    /// <summary>Hold out this fraction of the training data for validation when there is no eval dataset.</summary>
    [JsonPropertyName("eval_split")] public double EvalSplit { get; init; }
    /// <summary>Samples longer than cutoff_len: drop or truncate.</summary>
    [JsonPropertyName("excess_length")] public ExcessLength ExcessLength { get; init; } = ExcessLength.Drop;
    /// <summary>Pack short samples together into cutoff_len sequences.</summary>
    [JsonPropertyName("packing")] public bool Packing { get; init; }

    // ---- batches and schedule
    /// <summary>Sequences per forward/backward (memory).</summary>
    [JsonPropertyName("micro_batch_size")] public int MicroBatchSize { get; init; } = 4;
    /// <summary>Sequences per optimizer step; gradient accumulation = batch_size / micro_batch_size.</summary>
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 128;
    /// <summary>Passes over the training data.</summary>
    [JsonPropertyName("epochs")] public double Epochs { get; init; } = 3;
    /// <summary>Stop after this many optimizer steps (0 = use epochs).</summary>
    [JsonPropertyName("max_steps")] public int MaxSteps { get; init; }
    /// <summary>Peak learning rate.</summary>
    [JsonPropertyName("learning_rate")] public double LearningRate { get; init; } = 3e-4;
    /// <summary>constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial, inverse_sqrt.</summary>
    [JsonPropertyName("lr_scheduler_type")] public string LrSchedulerType { get; init; } = "linear";
    /// <summary>Warm-up steps; null: warmup_ratio when it is &gt; 0, else <see cref="DefaultWarmupSteps"/>.</summary>
    [JsonPropertyName("warmup_steps")] public int? WarmupSteps { get; init; }
    /// <summary>Warm-up as a fraction of all steps, used when warmup_steps is not set or 0 (transformers' rule).</summary>
    [JsonPropertyName("warmup_ratio")] public double WarmupRatio { get; init; }
    /// <summary>adamw, adam, sgd, adafactor, lion, sophia.</summary>
    [JsonPropertyName("optimizer")] public string Optimizer { get; init; } = "adamw";
    /// <summary>Weight decay.</summary>
    [JsonPropertyName("weight_decay")] public double WeightDecay { get; init; }
    /// <summary>SGD momentum.</summary>
    [JsonPropertyName("momentum")] public double Momentum { get; init; }
    /// <summary>SGD Nesterov momentum.</summary>
    [JsonPropertyName("nesterov")] public bool Nesterov { get; init; }
    /// <summary>β1 of adamw/adam/lion/sophia (TrainingArguments adam_beta1); null: the optimizer's own (0.9; sophia 0.965).</summary>
    [JsonPropertyName("adam_beta1")] public double? AdamBeta1 { get; init; }
    /// <summary>β2 of adamw/adam/lion/sophia (TrainingArguments adam_beta2); null: the optimizer's own (0.999; lion and sophia 0.99).</summary>
    [JsonPropertyName("adam_beta2")] public double? AdamBeta2 { get; init; }
    /// <summary>Sophia's γ (the authors' rho): the Hessian's weight in the clipped step's denominator.</summary>
    [JsonPropertyName("sophia_rho")] public double SophiaRho { get; init; } = 0.04;
    /// <summary>Sophia: refresh the Hessian estimate every this many optimizer steps (the paper's k).</summary>
    [JsonPropertyName("hessian_update_interval")] public int HessianUpdateInterval { get; init; } = 10;
    /// <summary>Clip gradients to this global norm (0 = no clipping).</summary>
    [JsonPropertyName("max_grad_norm")] public double MaxGradNorm { get; init; } = 1.0;

    // ---- LoRA
    /// <summary>LoRA rank r.</summary>
    [JsonPropertyName("lora_rank")] public int LoraRank { get; init; } = LoraSettings.DefaultRank;
    /// <summary>lora_alpha; null: 2 × lora_rank (on every path: CLI, files, web, library).</summary>
    [JsonPropertyName("lora_alpha")] public double? LoraAlpha { get; init; }
    /// <summary>lora_dropout.</summary>
    [JsonPropertyName("lora_dropout")] public double LoraDropout { get; init; } = 0.05;
    /// <summary>Projections to adapt, or ["all-linear"]; null: the model family's PEFT default (LlamaConfig.DefaultTargetModules:
    /// q_proj v_proj, phi3 qkv_proj), on every path (CLI, files, web, library), as lora_alpha's 2 × rank.</summary>
    [JsonPropertyName("target_modules")] public string[]? TargetModules { get; init; }
    /// <summary>Layers to adapt (null = all).</summary>
    [JsonPropertyName("layers_to_transform")] public int[]? LayersToTransform { get; init; }
    /// <summary>Per-module ranks (PEFT rank_pattern).</summary>
    [JsonPropertyName("rank_pattern")] public Dictionary<string, int> RankPattern { get; init; } = [];
    /// <summary>Per-module alphas (PEFT alpha_pattern).</summary>
    [JsonPropertyName("alpha_pattern")] public Dictionary<string, double> AlphaPattern { get; init; } = [];
    /// <summary>Scale alpha/√r (rsLoRA).</summary>
    [JsonPropertyName("use_rslora")] public bool UseRsLora { get; init; }
    /// <summary>default (Kaiming A, zero B), gaussian, none, pissa, pissa_niter_K or olora (PEFT's true/false accepted).</summary>
    [JsonPropertyName("init_lora_weights")] public string InitLoraWeights { get; init; } = "default";
    /// <summary>DoRA (PEFT use_dora): a trainable magnitude per output row times the normalised direction W + sBA.</summary>
    [JsonPropertyName("use_dora")] public bool UseDora { get; init; }
    /// <summary>LoRA+ (PEFT create_loraplus_optimizer's loraplus_lr_ratio): lora_B (and 1-D parameters) learn at this multiple of the learning rate; 0 = off.</summary>
    [JsonPropertyName("loraplus_lr_ratio")] public double LoraplusLrRatio { get; init; }
    /// <summary>NEFTune (transformers neftune_noise_alpha): uniform noise of size alpha/√(L·d) on the input embeddings while training; 0 = off.</summary>
    [JsonPropertyName("neftune_noise_alpha")] public double NeftuneNoiseAlpha { get; init; }
    /// <summary>Train every weight instead of a LoRA adapter.</summary>
    [JsonPropertyName("full_fine_tuning")] public bool FullFineTuning { get; init; }
    /// <summary>PEFT modules_to_save: embed_tokens and/or lm_head trained in full beside the adapter and saved in it.</summary>
    [JsonPropertyName("modules_to_save")] public string[] ModulesToSave { get; init; } = [];

    // ---- objective
    /// <summary>sft (next-token loss), dpo (preference pairs against the base with the adapter off) or orpo (preference pairs, no reference).</summary>
    [JsonPropertyName("objective")] public string Objective { get; init; } = "sft";
    /// <summary>DPO's β (TRL beta): strength of the KL constraint to the reference.</summary>
    [JsonPropertyName("beta")] public double Beta { get; init; } = 0.1;
    /// <summary>DPO's loss: sigmoid (the DPO paper) or ipo (Azar et al., on mean token log-probabilities).</summary>
    [JsonPropertyName("dpo_loss")] public string DpoLoss { get; init; } = "sigmoid";
    /// <summary>ORPO's λ: weight of the odds-ratio term beside the chosen responses' NLL.</summary>
    [JsonPropertyName("orpo_lambda")] public double OrpoLambda { get; init; } = 0.1;

    // ---- control
    /// <summary>Seed for initialisation, shuffling and dropout.</summary>
    [JsonPropertyName("seed")] public int Seed { get; init; } = 42;
    /// <summary>Evaluate every N steps (0 = only at the end).</summary>
    [JsonPropertyName("eval_steps")] public int EvalSteps { get; init; } = 100;
    /// <summary>Save a checkpoint every N steps (0 = none).</summary>
    [JsonPropertyName("save_steps")] public int SaveSteps { get; init; }
    /// <summary>Stop when the training loss falls to this value (0 = off).</summary>
    [JsonPropertyName("stop_at_loss")] public double StopAtLoss { get; init; }
    /// <summary>Stop after this many evaluations without a better validation loss (0 = off).</summary>
    [JsonPropertyName("early_stopping_patience")] public int EarlyStoppingPatience { get; init; }
    /// <summary>Recompute layer activations in the backward (less memory).</summary>
    [JsonPropertyName("gradient_checkpointing")] public bool GradientCheckpointing { get; init; }
    /// <summary>
    /// Base weight dtype: f32, bf16, f16, q8_0, q4_0, nf4 (QLoRA: frozen weights decoded inside the matmuls) or stored
    /// (the file's own types). Default: bf16/f16 matrices of Hugging Face folders as stored (exact), f32 otherwise; GGUF files as stored.
    /// </summary>
    [JsonPropertyName("base_dtype")] public string? BaseDType { get; init; }
    /// <summary>With an nf4 base: quantize the NF4 block scales to 8 bits too (QLoRA's bnb_4bit_use_double_quant).</summary>
    [JsonPropertyName("double_quant")] public bool DoubleQuant { get; init; }

    /// <summary>text-generation-webui's warm-up when neither warmup_steps nor warmup_ratio is given.</summary>
    public const int DefaultWarmupSteps = 100;

    /// <summary>lora_alpha as used: the given value, or 2 × rank.</summary>
    [JsonIgnore] public double EffectiveLoraAlpha => LoraAlpha ?? 2.0 * LoraRank;

    /// <summary>
    /// Warm-up steps of a run of <paramref name="totalSteps"/>: warmup_steps when &gt; 0; otherwise ceil(warmup_ratio ×
    /// total) when the ratio is &gt; 0 (transformers' TrainingArguments.get_warmup_steps); otherwise, when warmup_steps
    /// was not given at all, the webui's 100.
    /// </summary>
    public int ResolveWarmupSteps(int totalSteps) =>
        WarmupSteps is null && WarmupRatio == 0 ? DefaultWarmupSteps
            : Schedules.LearningRateSchedule.ResolveWarmupSteps(WarmupSteps ?? 0, WarmupRatio, totalSteps);

    /// <summary>Micro-batches per optimizer step.</summary>
    [JsonIgnore] public int GradientAccumulationSteps => Math.Max(1, BatchSize / Math.Max(1, MicroBatchSize));

    /// <summary>target_modules as used on a model of type <paramref name="modelType"/>: the given list, or that family's
    /// PEFT default (<see cref="Models.LlamaConfig.DefaultTargetModulesFor"/>; null model type: Llama's q_proj v_proj).</summary>
    public IReadOnlyList<string> EffectiveTargetModules(string? modelType) => TargetModules ?? Models.LlamaConfig.DefaultTargetModulesFor(modelType);

    /// <summary>The LoRA part as Models' settings, for a model of type <paramref name="modelType"/> (it picks the
    /// target_modules default when none are given; null: Llama's).</summary>
    public LoraSettings ToLoraSettings(string? modelType = null) => new()
    {
        Rank = LoraRank,
        Alpha = EffectiveLoraAlpha,
        Dropout = LoraDropout,
        TargetModules = EffectiveTargetModules(modelType),
        LayersToTransform = LayersToTransform,
        RankPattern = RankPattern,
        AlphaPattern = AlphaPattern,
        UseRsLora = UseRsLora,
        Init = InitLoraWeights,
        UseDora = UseDora,
    };

    /// <summary>Throws naming the setting when a value is out of range.</summary>
    public void Validate()
    {
        Settings.TrainingSettingsSchema.CheckValues(this);
        void Require(bool ok, string name, string message)
        {
            if (!ok) throw new Core.UserErrorException($"{name}: {message}");
        }
        Require(!string.IsNullOrWhiteSpace(LoraName) && LoraName.IndexOfAny(Path.GetInvalidFileNameChars()) < 0 && LoraName is not ("." or ".."),
            "lora_name", $"'{LoraName}' is not a valid folder name.");
        Require(!LoraName.StartsWith('.') && !LoraName.EndsWith(".run", StringComparison.Ordinal), "lora_name",
            $"'{LoraName}' may not start with '.' or end with '.run' (those names are a run's working and temporary folders).");
        Require(BatchSize >= MicroBatchSize, "batch_size", $"must be at least micro_batch_size {MicroBatchSize} (is {BatchSize}).");
        Require(BatchSize % MicroBatchSize == 0, "batch_size", $"{BatchSize} is not a multiple of micro_batch_size {MicroBatchSize}.");
        Require(Epochs > 0 || MaxSteps > 0, "epochs", "set epochs > 0 or max_steps > 0.");
        if (!string.IsNullOrWhiteSpace(ChatTemplate))
        {
            string t = ChatTemplate.Trim();
            bool known = Tokenizers.Chat.ChatTemplate.Names.Contains(t.ToLowerInvariant().Replace("-", "").Replace("_", ""));
            bool jinja = t.Contains("{{", StringComparison.Ordinal) || t.Contains("{%", StringComparison.Ordinal);
            Require(known || jinja || File.Exists(t), "chat_template",
                $"'{t}' is neither a template name ({string.Join(", ", Tokenizers.Chat.ChatTemplate.Names)}) nor an existing .jinja file nor Jinja text; leave it empty for the model's own template.");
        }
        Require(!DoubleQuant || BaseDType?.Trim().ToLowerInvariant() == "nf4", "double_quant", "applies to NF4 weights only: use it with base_dtype nf4.");
        Require(LoraplusLrRatio == 0 || !FullFineTuning, "loraplus_lr_ratio", "LoRA+ scales lora_B's learning rate and has no meaning with full_fine_tuning; turn one of them off.");
        Require(!UseDora || !FullFineTuning, "use_dora", "DoRA is an adapter; it has no meaning with full_fine_tuning; turn one of them off.");
        Require(AdamBeta1 is null || (AdamBeta1 >= 0 && AdamBeta1 < 1), "adam_beta1", $"must be in [0, 1) (is {AdamBeta1}).");
        Require(AdamBeta2 is null || (AdamBeta2 >= 0 && AdamBeta2 < 1), "adam_beta2", $"must be in [0, 1) (is {AdamBeta2}).");
        Require(SophiaRho > 0 && double.IsFinite(SophiaRho), "sophia_rho", $"must be a number > 0 (is {SophiaRho}); the authors use 0.03-0.05.");
        Require(HessianUpdateInterval >= 1, "hessian_update_interval", $"must be at least 1 (is {HessianUpdateInterval}); the paper uses 10.");
        bool sophia = Optimizer.Trim().ToLowerInvariant() is "sophia" or "sophiag";
        Require(!sophia || Objective == "sft", "optimizer",
            $"sophia estimates its Hessian from the cross-entropy of sampled tokens (Sophia-G), which objective {Objective} does not use; use adamw with {Objective}, or objective sft with sophia.");
        if (Objective != "sft")
        {
            Require(!FullFineTuning, "objective", $"{Objective} trains an adapter (DPO's reference is the base with the adapter switched off); it does not support full_fine_tuning.");
            Require(RawTextFile == null, "objective", $"{Objective} needs --dataset with preference rows {{\"prompt\", \"chosen\", \"rejected\"}} (or chat-form message lists), not raw text.");
        }
        if (ModulesToSave.Length > 0)
        {
            Require(!FullFineTuning, "modules_to_save", "full_fine_tuning already trains every weight; turn one of them off.");
            Require(Objective == "sft", "modules_to_save", $"{Objective} compares the model with and without the adapter; it trains adapters only, so leave modules_to_save empty.");
            Models.Llama.LlamaModel.NormalizeModulesToSave(ModulesToSave);
        }
        bool baseDerived = LoraSettings.IsBaseDerivedInit(InitLoraWeights);
        Require(!baseDerived || !FullFineTuning, "init_lora_weights", $"{InitLoraWeights} initialises an adapter; it has no meaning with full_fine_tuning; turn one of them off.");
        Require(!baseDerived || Objective != "dpo", "init_lora_weights",
            $"{InitLoraWeights} moves part of the base weights into the adapter, so DPO's reference (the base with the adapter off) would not be the original model; use init_lora_weights default with dpo.");
        Require(!baseDerived || ModulesToSave.Length == 0, "modules_to_save",
            $"{InitLoraWeights} writes the adapter converted to a plain LoRA on the original base, which does not carry modules_to_save yet; use init_lora_weights default with modules_to_save.");
        if (!FullFineTuning) ToLoraSettings().Validate();
    }
}
