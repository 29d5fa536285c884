// The exception for malformed or unsupported tokenizer files and vocabularies; its message names the file and the field.
// It is this assembly's one user-error type (LoraSharp.Tokenizers depends on nothing of ours, so it cannot throw
// Core.UserErrorException): unknown chat template names and text the vocabulary cannot encode use it too, and front
// ends show its message as it is. Programming errors (null arguments, ids from code) stay ArgumentExceptions.
namespace LoraSharp.Tokenizers;

/// <summary>A tokenizer file or vocabulary is malformed. The message says which file, which field and what is wrong.</summary>
public sealed class TokenizerFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public TokenizerFormatException(string message, Exception? inner = null) : base(message, inner) { }

    /// <summary>The file the error was found in, when known.</summary>
    public string? FilePath { get; init; }

    /// <summary>The field (JSON path or GGUF key) that is wrong, when known.</summary>
    public string? Field { get; init; }

    internal static TokenizerFormatException For(string? file, string field, string what, Exception? inner = null) =>
        new($"{(file is null ? "tokenizer" : Path.GetFileName(file))}: field '{field}' {what}" +
            (file is null ? "" : $" (file {file})"), inner) { FilePath = file, Field = field };
}
