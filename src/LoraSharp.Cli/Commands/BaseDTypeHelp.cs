// Help texts of the options that choose how base weights are held (--base-dtype, --double-quant), shared by every
// verb that loads a model for compute (train, generate, perplexity) so they read the same everywhere.
namespace LoraSharp.Cli.Commands;

internal static class BaseDTypeHelp
{
    public const string BaseDType =
        "Base weights as f32, bf16, f16, q8_0, q4_0, nf4 (QLoRA: kept compressed, decoded inside the matmuls) or stored " +
        "(the file's own types). Default: f32 for Hugging Face folders, stored for GGUF files.";

    public const string DoubleQuant = "With --base-dtype nf4: quantize the NF4 block scales to 8 bits too (QLoRA double quantization, 4.13 instead of 4.5 bits a weight).";
}
