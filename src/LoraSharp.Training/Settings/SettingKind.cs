// The value type of a training setting, as a form or a command line needs to know it.
namespace LoraSharp.Training.Settings;

/// <summary>How a setting's value is written.</summary>
public enum SettingKind
{
    /// <summary>Free text.</summary>
    Text,
    /// <summary>A whole number.</summary>
    Integer,
    /// <summary>A real number.</summary>
    Number,
    /// <summary>On or off.</summary>
    Boolean,
    /// <summary>One of <see cref="SettingInfo.Choices"/>.</summary>
    Choice,
    /// <summary>Several of <see cref="SettingInfo.Choices"/>.</summary>
    List,
    /// <summary>Whole numbers separated by spaces (empty = all).</summary>
    IntegerList,
    /// <summary>module=number pairs separated by commas.</summary>
    Pattern,
    /// <summary>A dataset file (JSON, JSONL or text) or a folder of text files.</summary>
    Dataset,
    /// <summary>A format file name from formats/, or chat.</summary>
    Format,
}
