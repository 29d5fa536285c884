// PEFT's tensor key names for LoRA weights (built by the one name map, Loading.TensorNames), as adapter_model.safetensors stores them (adapter name removed):
// base_model.model.<module>.lora_A.weight, where <module> is the HF module name (model.layers.N.self_attn.q_proj).
namespace LoraSharp.Models.Lora;

/// <summary>PEFT key names of LoRA tensors.</summary>
public static class LoraKeys
{
    /// <summary>The prefix PEFT puts before a module name.</summary>
    public const string Prefix = Loading.TensorNames.PeftPrefix;

    /// <summary>lora_A key of <paramref name="module"/>.</summary>
    public static string A(string module) => Loading.TensorNames.HfToPeft(module + ".weight", "lora_A");

    /// <summary>lora_B key of <paramref name="module"/>.</summary>
    public static string B(string module) => Loading.TensorNames.HfToPeft(module + ".weight", "lora_B");

    /// <summary>
    /// DoRA's magnitude key of <paramref name="module"/> as PEFT saves it: base_model.model.&lt;module&gt;.lora_magnitude_vector,
    /// WITHOUT ".weight" (peft utils/save_and_load.py strips it to keep the file format of PEFT before its DoRA refactor).
    /// </summary>
    public static string Magnitude(string module) => Prefix + module + ".lora_magnitude_vector";

    /// <summary>The module of a DoRA magnitude key (…q_proj.lora_magnitude_vector, also with ".default" or ".weight" after it), or null.</summary>
    public static string? ParseMagnitude(string key)
    {
        var m = MagnitudePattern.Match(key);
        return m.Success ? m.Groups["module"].Value : null;
    }

    private static readonly System.Text.RegularExpressions.Regex MagnitudePattern =
        new(@"^(?:base_model\.model\.)?(?<module>.+)\.lora_magnitude_vector(?:\.[^.]+)?(?:\.weight)?$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    /// <summary>Splits a PEFT key into (module, 'A' or 'B'), or null when it is not a LoRA weight key.
    /// Accepts keys with the adapter name kept (…q_proj.lora_A.default.weight) as some tools save them.</summary>
    public static (string Module, char Which)? Parse(string key)
    {
        var m = KeyPattern.Match(key);
        return m.Success ? (m.Groups["module"].Value, m.Groups["which"].Value[0]) : null;
    }

    private static readonly System.Text.RegularExpressions.Regex KeyPattern =
        new(@"^(?:base_model\.model\.)?(?<module>.+)\.lora_(?<which>[AB])(?:\.[^.]+)?\.weight$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);
}
