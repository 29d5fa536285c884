// Finds the chat template a loaded model ships: GGUF metadata tokenizer.chat_template (BOS/EOS texts from the GGUF
// vocabulary), or a Hugging Face folder's chat_template.jinja / tokenizer_config.json chat_template. It does not
// parse the template (ModelChatTemplate.Parse does, when chat data needs it).
using LoraSharp.Formats.Gguf;
using LoraSharp.Tokenizers;
using LoraSharp.Tokenizers.Chat;

namespace LoraSharp.Models.Loading;

/// <summary>The chat template of a loaded model.</summary>
public static class ModelChatTemplates
{
    /// <summary>The model's own template, or null when it ships none.</summary>
    public static ModelChatTemplate? For(LoadedModel model, Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (model.GgufMetadata is { } meta)
        {
            foreach (var (key, value) in meta)
                if (key == "tokenizer.chat_template" && value.Value is string { Length: > 0 } src)
                    return new ModelChatTemplate(src, $"{model.SourcePath} tokenizer.chat_template", tokenizer.IdToToken(tokenizer.BosTokenId), tokenizer.IdToToken(tokenizer.EosTokenId));
            return null;
        }
        string folder = File.Exists(model.SourcePath) ? Path.GetDirectoryName(Path.GetFullPath(model.SourcePath))! : model.SourcePath;
        return ModelChatTemplate.FromTokenizerConfig(Path.Combine(folder, "tokenizer_config.json"));
    }
}
