// `lorasharp tokenize`: the ids and pieces a model's tokenizer gives for a text.
using System.CommandLine;
using LoraSharp.Models.Loading;

namespace LoraSharp.Cli.Commands;

internal static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Model folder or .gguf file (or a tokenizer.json / folder with vocab files).", Required = true };
        var text = new Argument<string>("text") { Description = "The text to tokenize." };
        var noSpecial = new Option<bool>("--no-special") { Description = "Do not add BOS/EOS." };
        var command = new Command("tokenize", "Show the token ids and pieces of a text.");
        command.Options.Add(model);
        command.Options.Add(noSpecial);
        command.Arguments.Add(text);
        command.SetAction(parse => CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            var output = parse.InvocationConfiguration.Output;
            var tokenizer = LoadTokenizer(parse.GetValue(model)!);
            var tokens = tokenizer.EncodeToTokens(parse.GetValue(text)!, addSpecialTokens: !parse.GetValue(noSpecial));
            output.WriteLine($"{tokens.Count} tokens");
            output.WriteLine("ids:    " + string.Join(' ', tokens.Select(t => t.Id)));
            output.WriteLine("pieces: " + string.Join(' ', tokens.Select(t => System.Text.Json.JsonSerializer.Serialize(t.Value, Relaxed))));
            return 0;
        }));
        return command;
    }

    private static readonly System.Text.Json.JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static Tokenizers.Tokenizer LoadTokenizer(string path)
    {
        if (path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
        {
            using var gguf = Formats.Gguf.GgufFile.Open(path);
            return GgufTokenizer.FromMetadata(gguf.Metadata, path);
        }
        return Tokenizers.TokenizerLoader.FromFile(path);
    }
}
