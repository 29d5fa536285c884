// Reads a config.json text through the real file path of LlamaConfigReader (written to a temporary folder).
using LoraSharp.Models.Loading;

namespace LoraSharp.Models.Tests.Loading;

internal static class ConfigJson
{
    public static LlamaConfig Read(string json)
    {
        string dir = Directory.CreateTempSubdirectory("lorasharp-cfg-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "config.json"), json);
            return LlamaConfigReader.FromHfFile(Path.Combine(dir, "config.json"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
