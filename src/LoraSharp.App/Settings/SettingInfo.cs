// The description of one training setting: its snake_case name (training_parameters.json, text-generation-webui),
// its command-line option, and the one-line help both the CLI and the web form show.
namespace LoraSharp.App.Settings;

/// <summary>One training setting as a front end presents it.</summary>
/// <param name="Name">snake_case name, as in training_parameters.json.</param>
/// <param name="Cli">The `lorasharp train` option.</param>
/// <param name="Group">Section of the form (adapter, data, raw_text, schedule, lora, control).</param>
/// <param name="Kind">Value type.</param>
/// <param name="Help">One-line help, the same text `lorasharp train --help` shows.</param>
/// <param name="Advanced">Shown folded away by default.</param>
/// <param name="Choices">Allowed values for Choice and List settings.</param>
public sealed record SettingInfo(string Name, string Cli, string Group, SettingKind Kind, string Help, bool Advanced = false, IReadOnlyList<string>? Choices = null);
