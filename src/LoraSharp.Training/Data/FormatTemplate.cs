// One entry of a format file: the set of fields it is for and the template text with %field% placeholders.
namespace LoraSharp.Training.Data;

/// <summary>A template of a format file.</summary>
/// <param name="Key">The key as written in the file (e.g. "instruction,input,output").</param>
/// <param name="Fields">The field names of the key, trimmed.</param>
/// <param name="Template">The text with %field% placeholders.</param>
public sealed record FormatTemplate(string Key, IReadOnlySet<string> Fields, string Template);
