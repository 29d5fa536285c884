// The one error type of the Jinja interpreter: a syntax or runtime error with the template line and column, or a
// raise_exception() call of the template itself (IsRaised, with the template's own message).
namespace LoraSharp.Tokenizers.Chat.Jinja;

/// <summary>A chat template that does not parse, fails while rendering, or calls <c>raise_exception</c>.</summary>
public sealed class JinjaException : Exception
{
    /// <summary>1-based line in the template, 0 when unknown.</summary>
    public int Line { get; }

    /// <summary>1-based column in the template, 0 when unknown.</summary>
    public int Column { get; }

    /// <summary>True when the template itself called <c>raise_exception(message)</c>; Message is then its text alone.</summary>
    public bool IsRaised { get; }

    /// <summary>The message without the position prefix.</summary>
    public string Detail { get; }

    internal JinjaException(string detail, int line, int column, bool raised = false)
        : base(raised ? detail : line > 0 ? $"chat template line {line}, column {column}: {detail}" : $"chat template: {detail}")
    {
        Detail = detail;
        Line = line;
        Column = column;
        IsRaised = raised;
    }
}
