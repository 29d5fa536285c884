// `dotnet pack` as a user runs it (docs/packaging.md): the six library packages with README, licence, XML docs and
// symbols; the CLI as a .NET tool that installs into a tool path from the packed folder alone and runs the default demo.
using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Xml.Linq;

namespace LoraSharp.Cli.Tests;

public sealed class PackagedToolTests
{
    private static readonly string[] Libraries = ["Core", "Formats", "Tokenizers", "Models", "Training", "App"];

    [Fact]
    public void Pack_GivesLibrariesAndATool_ThatInstallsAndTrains()
    {
        string root = RepoRoot();
        // The configuration this test was built in (bin/<Configuration>/...), so that --no-build packs what was built.
        string configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        string tmp = Path.Combine(Path.GetTempPath(), "lorasharp-pack-" + Guid.NewGuid().ToString("N")[..8]);
        string artifacts = Path.Combine(tmp, "artifacts"), tools = Path.Combine(tmp, "tools"), work = Path.Combine(tmp, "work");
        Directory.CreateDirectory(work);
        try
        {
            Run(root, "dotnet", "pack", Path.Combine(root, "LoraSharp.slnx"), "-c", configuration, "--no-build", "-o", artifacts);
            string version = typeof(CliApp).Assembly.GetName().Version!.ToString(3);

            foreach (var lib in Libraries)
            {
                string id = "LoraSharp." + lib;
                string nupkg = Path.Combine(artifacts, $"{id}.{version}.nupkg");
                Assert.True(File.Exists(nupkg), $"{nupkg} missing; packed: {string.Join(", ", Directory.GetFiles(artifacts).Select(Path.GetFileName))}");
                Assert.True(File.Exists(Path.ChangeExtension(nupkg, ".snupkg")), $"{id}: no symbols package");
                using var zip = ZipFile.OpenRead(nupkg);
                var names = zip.Entries.Select(e => e.FullName).ToHashSet();
                Assert.Contains("README.md", names);
                Assert.Contains($"lib/net10.0/{id}.dll", names);
                Assert.Contains($"lib/net10.0/{id}.xml", names);
                var nuspec = XDocument.Load(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open());
                Assert.Equal("MIT", nuspec.Descendants().Single(e => e.Name.LocalName == "license").Value);
                Assert.Equal("README.md", nuspec.Descendants().Single(e => e.Name.LocalName == "readme").Value);
            }
            // Nothing else is packed: no tests, no bench, no web, no TestSupport.
            var packed = Directory.GetFiles(artifacts, "*.nupkg").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(Libraries.Select(l => $"LoraSharp.{l}.{version}.nupkg").Append($"LoraSharp.Cli.{version}.nupkg").Order(StringComparer.Ordinal), packed);

            using (var tool = ZipFile.OpenRead(Path.Combine(artifacts, $"LoraSharp.Cli.{version}.nupkg")))
            {
                var names = tool.Entries.Select(e => e.FullName).ToArray();
                Assert.Contains("tools/net10.0/any/models/default/lorasharp-tiny.gguf", names);
                foreach (var format in Directory.GetFiles(Path.Combine(root, "formats"), "*.json"))
                    Assert.Contains("tools/net10.0/any/formats/" + Path.GetFileName(format), names);
                // llama.cpp (bench generate's peer) stays out of the tool: no LLamaSharp assembly, no native runtimes.
                Assert.DoesNotContain(names, n => n.Contains("llamasharp", StringComparison.OrdinalIgnoreCase) || n.Contains("ggml", StringComparison.OrdinalIgnoreCase)
                                                 || Path.GetFileName(n).StartsWith("libllama", StringComparison.Ordinal) || Path.GetFileName(n).StartsWith("llama.", StringComparison.Ordinal));
            }

            // A private packages folder: the global one may hold an older LoraSharp.Cli of the same version.
            Run(work, "dotnet", ["tool", "install", "--tool-path", tools, "LoraSharp.Cli", "--version", version, "--add-source", artifacts, "--ignore-failed-sources"],
                ("NUGET_PACKAGES", Path.Combine(tmp, "packages")));
            string exe = Path.Combine(tools, OperatingSystem.IsWindows() ? "lorasharp.exe" : "lorasharp");

            string shown = Run(work, exe, "--version").Trim();
            string expected = typeof(CliApp).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
            Assert.Equal(expected, shown);

            // The default demo from the installed tool: it finds the shipped model and trains 2 steps.
            string trained = Run(work, exe, "train", "--max-steps", "2");
            Assert.Contains("done: 2 steps", trained);
            string adapter = Path.Combine(work, "loras", "default-next-number");
            Assert.True(File.Exists(Path.Combine(adapter, "adapter_config.json")), $"no adapter in {adapter}; output:\n{trained}");
        }
        finally
        {
            try { Directory.Delete(tmp, recursive: true); } catch (IOException) { }
        }
    }

    private static string Run(string cwd, string file, params string[] args) => Run(cwd, file, args, []);

    private static string Run(string cwd, string file, string[] args, params (string Name, string Value)[] env)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (name, value) in env) psi.Environment[name] = value;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(TimeSpan.FromMinutes(8))) { p.Kill(entireProcessTree: true); Assert.Fail($"{file} {string.Join(' ', args)} ran over 8 minutes"); }
        Assert.True(p.ExitCode == 0, $"{file} {string.Join(' ', args)} exited {p.ExitCode}:\n{stdout}\n{stderr.Result}");
        return stdout;
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "LoraSharp.slnx"))) return d.FullName;
        throw new DirectoryNotFoundException("LoraSharp.slnx not found above " + AppContext.BaseDirectory);
    }
}
