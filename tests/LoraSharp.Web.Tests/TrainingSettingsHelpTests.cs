// The one list of training settings that both the CLI's option help and the web form use covers every setting.
using System.Text.Json;
using LoraSharp.Training.Settings;
using LoraSharp.Training;

namespace LoraSharp.Web.Tests;

public sealed class TrainingSettingsHelpTests
{
    [Fact]
    public void EverySetting_AppearsExactlyOnce()
    {
        using var json = JsonDocument.Parse(TrainingSettingsFile.ToJson(new TrainingSettings()));
        var names = json.RootElement.EnumerateObject().Select(p => p.Name).Order().ToArray();
        Assert.Equal(names, TrainingSettingsSchema.All.Select(s => s.Name).Order());
        Assert.Equal(TrainingSettingsSchema.All.Count, TrainingSettingsSchema.All.Select(s => s.Cli).Distinct().Count());
    }

    [Fact]
    public void ChoiceSettings_HaveTheirDefaultAmongTheChoices()
    {
        using var json = JsonDocument.Parse(TrainingSettingsFile.ToJson(new TrainingSettings()));
        foreach (var s in TrainingSettingsSchema.All.Where(s => s.Kind is SettingKind.Choice or SettingKind.List))
        {
            Assert.NotNull(s.Choices);
            var value = json.RootElement.GetProperty(s.Name);
            var defaults = value.ValueKind switch
            {
                JsonValueKind.Array => value.EnumerateArray().Select(v => v.GetString()!).ToArray(),
                JsonValueKind.Null => [],
                _ => [value.GetString()!],
            };
            Assert.All(defaults, d => Assert.Contains(d, s.Choices!));
        }
    }

    [Fact]
    public void UnknownName_IsAnError() => Assert.Throws<ArgumentException>(() => TrainingSettingsSchema.For("no_such_setting"));
}
