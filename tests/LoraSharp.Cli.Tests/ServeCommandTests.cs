// `lorasharp serve` option errors (the server itself is tested in LoraSharp.Web.Tests), and `train`'s option
// help coming from the list the web form uses.
using LoraSharp.Training.Settings;

namespace LoraSharp.Cli.Tests;

public sealed class ServeCommandTests
{
    private static (int Code, string Err) Run(params string[] args)
    {
        var e = new StringWriter();
        int code = CliApp.Run(args, new StringWriter(), e);
        return (code, e.ToString());
    }

    [Fact]
    public void Serve_APortOutOfRange_FailsNamingTheOption()
    {
        var (code, err) = Run("serve", "--port", "70000");
        Assert.Equal(1, code);
        Assert.Contains("--port must be between 0 and 65535", err);
    }

    [Fact]
    public void Serve_AMissingModelsFolder_FailsSayingWhatItShouldHold()
    {
        var (code, err) = Run("serve", "--models", Path.Combine(Path.GetTempPath(), "lorasharp-no-such-models-" + Guid.NewGuid().ToString("N")), "--port", "0");
        Assert.Equal(1, code);
        Assert.Contains("--models", err);
        Assert.Contains("Hugging Face model folders or .gguf files", err);
    }

    [Fact]
    public void Serve_ListenWithAHostName_AsksForAnAddress()
    {
        var (code, err) = Run("serve", "--listen", "my-host", "--port", "0");
        Assert.Equal(1, code);
        Assert.Contains("--listen takes an IP address", err);
    }

    [Fact]
    public void Train_OptionHelp_IsTheTextTheWebFormShows()
    {
        var train = CliApp.Build().Subcommands.Single(c => c.Name == "train");
        foreach (var setting in TrainingSettingsSchema.All)
        {
            var option = train.Options.Single(o => o.Name == setting.Cli);
            Assert.Equal(TrainingSettingsSchema.Describe(setting), option.Description);
            Assert.StartsWith(setting.Help, option.Description);
            Assert.Equal(setting.CliAliases.Order(), option.Aliases.Order());
        }
    }
}
