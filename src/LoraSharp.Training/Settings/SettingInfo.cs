// The description of one training setting: its snake_case name (training_parameters.json, text-generation-webui),
// its command-line option, its form group, value kind, allowed range or choices and one-line help. The CLI options,
// the web form, the settings-file parser, validation and the table in docs/training.md are all made from these.
// Not here: the default value and the C# type, which are the TrainingSettings property's (one definition each).
using System.Text.Json.Serialization;

namespace LoraSharp.Training.Settings;

/// <summary>One training setting as every front end and the validation see it.</summary>
/// <param name="Name">snake_case name, as in training_parameters.json.</param>
/// <param name="Cli">The `lorasharp train` option.</param>
/// <param name="Group">Section of the form (adapter, data, raw_text, schedule, lora, control).</param>
/// <param name="Kind">Value type.</param>
/// <param name="Help">One-line help, without the default (that is added from TrainingSettings).</param>
/// <param name="Advanced">Shown folded away by default.</param>
/// <param name="Choices">Allowed values for Choice and List settings.</param>
public sealed record SettingInfo(string Name, string Cli, string Group, SettingKind Kind, string Help, bool Advanced = false, IReadOnlyList<string>? Choices = null)
{
    /// <summary>Allowed numeric range in interval notation ("[0, 1)", "(0, inf)", "[1, inf)"); null: any value of the type.</summary>
    public string? Range { get; init; }

    /// <summary>Other spellings of the CLI option ("-r", "--lr").</summary>
    public IReadOnlyList<string> CliAliases { get; init; } = [];

    /// <summary>How the default reads when it is not a plain value (a null default that means "2 x rank", "auto").</summary>
    public string? DefaultText { get; init; }

    /// <summary>
    /// For Choice settings that also take other spellings (optimizer aliases, dtype names): the parser that accepts a
    /// value (throws ArgumentException for a bad one). Null: the value must be one of <see cref="Choices"/>.
    /// </summary>
    [JsonIgnore] public Action<string>? Parser { get; init; }
}
