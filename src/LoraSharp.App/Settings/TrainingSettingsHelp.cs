// The one list of training settings with their help texts: `lorasharp train` takes its option descriptions from it
// and the web UI builds its training form from it, so both say the same thing. Every TrainingSettings property
// appears exactly once (a test checks it). Defaults are not repeated here as values: they are TrainingSettings'
// initialisers (the texts mention them as the CLI help always has).
using LoraSharp.Core.Optim;
using LoraSharp.Models.Llama;
using LoraSharp.Training.Schedules;

namespace LoraSharp.App.Settings;

/// <summary>Help texts and form metadata of every training setting.</summary>
public static class TrainingSettingsHelp
{
    /// <summary>Every setting of <see cref="Training.TrainingSettings"/>, in form order.</summary>
    public static IReadOnlyList<SettingInfo> All { get; } =
    [
        new("lora_name", "--name", "adapter", SettingKind.Text, "Adapter name (lora_name): the output folder."),
        new("always_override", "--overwrite", "adapter", SettingKind.Boolean, "Replace an existing adapter folder of the same name (always_override)."),

        new("dataset", "--dataset", "data", SettingKind.Dataset, "Formatted or chat dataset (JSON array or JSONL)."),
        new("format", "--format", "data", SettingKind.Format, "Format file or name (alpaca, alpaca-chatbot, ChatML, llama2-chat, vicuna) or 'chat'."),
        new("chat_template", "--chat-template", "data", SettingKind.Text, "Chat datasets: template name (chatml, llama3, ...), a .jinja file, or empty for the model's own chat_template (ChatML if it has none).", true),
        new("train_on_inputs", "--train-on-inputs", "data", SettingKind.Boolean, "Chat datasets: train on every token, not only the assistant replies.", true),
        new("raw_text_file", "--raw-text-file", "data", SettingKind.Dataset, "Raw text: a .txt file or a folder of them."),
        new("eval_dataset", "--eval-dataset", "data", SettingKind.Dataset, "Validation dataset file."),
        new("eval_split", "--eval-split", "data", SettingKind.Number, "Hold out this fraction for validation when no eval dataset is given."),
        new("cutoff_len", "--cutoff-len", "data", SettingKind.Integer, "Longest sequence in tokens (default 256)."),
        new("train_only_after", "--train-only-after", "data", SettingKind.Text, "Train only on text after this marker (e.g. '### Response:')."),
        new("add_eos_token", "--add-eos-token", "data", SettingKind.Boolean, "Add EOS at the end of each block/sample."),
        new("excess_length", "--excess-length", "data", SettingKind.Choice, "Samples longer than cutoff: drop or truncate (default drop).", true, ["drop", "truncate"]),
        new("packing", "--packing", "data", SettingKind.Boolean, "Pack short samples into cutoff-length sequences.", true),
        new("overlap_len", "--overlap-len", "raw_text", SettingKind.Integer, "Raw text: tokens shared by consecutive chunks (default 128)."),
        new("newline_favor_len", "--newline-favor-len", "raw_text", SettingKind.Integer, "Raw text: prefer cuts at newlines within N characters (default 128)."),
        new("hard_cut_string", "--hard-cut-string", "raw_text", SettingKind.Text, "Raw text: no chunk spans this string (default three newlines)."),
        new("min_chars", "--min-chars", "raw_text", SettingKind.Integer, "Raw text: ignore blocks of at most N characters."),

        new("lora_rank", "--lora-rank", "lora", SettingKind.Integer, "LoRA rank (default 32)."),
        new("lora_alpha", "--lora-alpha", "lora", SettingKind.Number, "LoRA alpha (default 2 x rank)."),
        new("lora_dropout", "--lora-dropout", "lora", SettingKind.Number, "LoRA dropout (default 0.05)."),
        new("target_modules", "--target-modules", "lora", SettingKind.List, "q_proj k_proj v_proj o_proj gate_proj up_proj down_proj, or all-linear.",
            false, [.. LlamaLayer.ProjectionNames, "all-linear"]),
        new("layers_to_transform", "--layers", "lora", SettingKind.IntegerList, "Layers to adapt (default all).", true),
        new("rank_pattern", "--rank-pattern", "lora", SettingKind.Pattern, "Per-module ranks (PEFT rank_pattern), e.g. q_proj=4,down_proj=16.", true),
        new("alpha_pattern", "--alpha-pattern", "lora", SettingKind.Pattern, "Per-module alphas (PEFT alpha_pattern), e.g. q_proj=8.", true),
        new("use_rslora", "--use-rslora", "lora", SettingKind.Boolean, "Scale by alpha/sqrt(r) (rsLoRA).", true),
        new("init_lora_weights", "--init-lora-weights", "lora", SettingKind.Choice, "default or gaussian.", true, ["default", "gaussian"]),
        new("full_fine_tuning", "--full-fine-tuning", "lora", SettingKind.Boolean, "Train every weight instead of an adapter.", true),

        new("micro_batch_size", "--micro-batch-size", "schedule", SettingKind.Integer, "Sequences per forward/backward (default 4)."),
        new("batch_size", "--batch-size", "schedule", SettingKind.Integer, "Sequences per optimizer step (default 128; accumulation = batch / micro)."),
        new("epochs", "--epochs", "schedule", SettingKind.Number, "Passes over the data (default 3)."),
        new("max_steps", "--max-steps", "schedule", SettingKind.Integer, "Stop after N optimizer steps (overrides epochs)."),
        new("learning_rate", "--learning-rate", "schedule", SettingKind.Number, "Peak learning rate (default 3e-4)."),
        new("lr_scheduler_type", "--lr-scheduler", "schedule", SettingKind.Choice, string.Join(", ", LearningRateSchedule.Names) + ".", false, LearningRateSchedule.Names),
        new("warmup_steps", "--warmup-steps", "schedule", SettingKind.Integer, "Warm-up steps (default 100)."),
        new("warmup_ratio", "--warmup-ratio", "schedule", SettingKind.Number, "Warm-up as a fraction of all steps.", true),
        new("optimizer", "--optimizer", "schedule", SettingKind.Choice, string.Join(", ", OptimizerFactory.Names) + " (default adamw).", false, OptimizerFactory.Names),
        new("weight_decay", "--weight-decay", "schedule", SettingKind.Number, "Weight decay (default 0).", true),
        new("momentum", "--momentum", "schedule", SettingKind.Number, "SGD momentum.", true),
        new("nesterov", "--nesterov", "schedule", SettingKind.Boolean, "SGD Nesterov momentum.", true),
        new("max_grad_norm", "--max-grad-norm", "schedule", SettingKind.Number, "Clip gradients to this global norm (default 1; 0 = off).", true),

        new("eval_steps", "--eval-steps", "control", SettingKind.Integer, "Evaluate every N steps (default 100)."),
        new("save_steps", "--save-steps", "control", SettingKind.Integer, "Save checkpoint-N every N steps (default 0 = never)."),
        new("stop_at_loss", "--stop-at-loss", "control", SettingKind.Number, "Stop when the training loss reaches this value."),
        new("early_stopping_patience", "--early-stopping-patience", "control", SettingKind.Integer, "Stop after N evaluations without a better validation loss.", true),
        new("seed", "--seed", "control", SettingKind.Integer, "Seed for init, shuffling and dropout (default 42).", true),
        new("gradient_checkpointing", "--gradient-checkpointing", "control", SettingKind.Boolean, "Recompute activations in the backward (less memory).", true),
        new("base_dtype", "--base-dtype", "control", SettingKind.Choice,
            "Base weights as f32, bf16, f16, q8_0, q4_0, nf4 (QLoRA: kept compressed, decoded inside the matmuls) or stored " +
            "(the file's own types). Default (auto): a Hugging Face folder's bf16/f16 matrices as stored (exact), f32 otherwise; GGUF files as stored.", true,
            ["auto", "f32", "bf16", "f16", "q8_0", "q4_0", "nf4", "stored"]),
        new("double_quant", "--double-quant", "control", SettingKind.Boolean,
            "With base dtype nf4: quantize the NF4 block scales to 8 bits too (QLoRA double quantization, 4.13 instead of 4.5 bits a weight).", true),
    ];

    /// <summary>The help of setting <paramref name="name"/> (snake_case); throws for an unknown name.</summary>
    public static string For(string name) => All.FirstOrDefault(s => s.Name == name)?.Help
        ?? throw new ArgumentException($"'{name}' is not a training setting; see TrainingSettingsHelp.All.", nameof(name));
}
