// The folders a server works in, opened once at start: models (read; merges are written here), datasets (read;
// uploads go here), adapters (training output; exports and combinations go here) and formats (read). Lists what
// each holds for the browser's pickers, skipping anything that leads outside its folder. Also hides the folders'
// real paths in messages sent to the browser. Not here: reading model or dataset contents.
namespace LoraSharp.Web.Library;

/// <summary>The configured folders and their listings.</summary>
internal sealed class WebFolders
{
    private static readonly string[] DatasetExtensions = [".json", ".jsonl", ".txt"];

    public WebFolders(WebServerOptions options)
    {
        if (!Directory.Exists(options.ModelsFolder))
            throw new DirectoryNotFoundException($"--models: folder '{options.ModelsFolder}' does not exist. Point --models at a folder holding Hugging Face model folders or .gguf files.");
        Directory.CreateDirectory(options.DatasetsFolder);
        Directory.CreateDirectory(options.AdaptersFolder);
        Models = WebFolder.At("models", options.ModelsFolder);
        Datasets = WebFolder.At("datasets", options.DatasetsFolder);
        Adapters = WebFolder.At("adapters", options.AdaptersFolder);
        string? formats = options.FormatsFolder ?? App.FineTuneJob.FindFormatsFolder();
        Formats = formats != null && Directory.Exists(formats) ? WebFolder.At("formats", formats) : null;
    }

    public WebFolder Models { get; }
    public WebFolder Datasets { get; }
    public WebFolder Adapters { get; }
    public WebFolder? Formats { get; }

    /// <summary>Hugging Face folders (with config.json) and .gguf files, up to one folder deep.</summary>
    public IReadOnlyList<Entry> ListModels()
    {
        var list = new List<Entry>();
        foreach (var file in Files(Models, Models.Root, "*.gguf")) list.Add(Describe(Models, file, "gguf"));
        foreach (var dir in Folders(Models))
        {
            if (File.Exists(Path.Combine(dir, "config.json"))) list.Add(Describe(Models, dir, "hf"));
            foreach (var file in Files(Models, dir, "*.gguf")) list.Add(Describe(Models, file, "gguf"));
        }
        return Sorted(list);
    }

    /// <summary>.json, .jsonl and .txt files up to one folder deep, and folders of .txt files (raw text).</summary>
    public IReadOnlyList<Entry> ListDatasets()
    {
        var list = new List<Entry>();
        foreach (var dir in (string[])[Datasets.Root, .. Folders(Datasets)])
        {
            var files = Files(Datasets, dir, "*").Where(f => DatasetExtensions.Contains(Path.GetExtension(f).ToLowerInvariant())).ToArray();
            foreach (var file in files) list.Add(Describe(Datasets, file, Path.GetExtension(file).ToLowerInvariant() == ".txt" ? "text" : "json"));
            if (dir != Datasets.Root && files.Any(f => f.EndsWith(".txt", StringComparison.OrdinalIgnoreCase))) list.Add(Describe(Datasets, dir, "text-folder"));
        }
        return Sorted(list);
    }

    /// <summary>Format names from formats/ (alpaca for alpaca-format.json).</summary>
    public IReadOnlyList<string> ListFormats() => Formats == null ? [] :
        Files(Formats, Formats.Root, "*-format.json").Select(f => Path.GetFileName(f)[..^"-format.json".Length]).Order(StringComparer.Ordinal).ToArray();

    /// <summary>The format file of <paramref name="name"/> (a listed format name), or refused.</summary>
    public string FormatFile(string name)
    {
        if (!ListFormats().Contains(name))
            throw new Core.UserErrorException($"format '{name}' is not one of [{string.Join(", ", ListFormats())}] or chat; format files live in the formats folder.");
        return Formats!.ResolveChild(name + "-format.json");
    }

    /// <summary>The format name of a format file path (for copying settings back into the form).</summary>
    public string? FormatName(string? path)
    {
        if (path is null or "chat") return path;
        string? name = Formats?.Name(path);
        return name != null && name.EndsWith("-format.json", StringComparison.Ordinal) ? name[..^"-format.json".Length] : null;
    }

    /// <summary><paramref name="message"/> with every folder's real path replaced by its label.</summary>
    public string Redact(string message)
    {
        foreach (var f in new[] { Models, Datasets, Adapters, Formats })
            if (f != null) message = message.Replace(f.Root + Path.DirectorySeparatorChar, f.Label + "/").Replace(f.Root, f.Label);
        return message;
    }

    // Files that really lie inside (a link to elsewhere is skipped).
    private static IEnumerable<string> Files(WebFolder folder, string dir, string pattern) =>
        Directory.EnumerateFiles(dir, pattern).Where(folder.Contains);

    // Sub-folders that really lie inside (a link to elsewhere is skipped; so is a hidden folder).
    private static IEnumerable<string> Folders(WebFolder folder) =>
        Directory.EnumerateDirectories(folder.Root).Where(d => !Path.GetFileName(d).StartsWith('.') && folder.Contains(d));

    private static Entry Describe(WebFolder folder, string path, string kind) =>
        new(Path.GetRelativePath(folder.Root, path).Replace(Path.DirectorySeparatorChar, '/'), kind,
            File.Exists(path) ? new FileInfo(path).Length : null);

    private static IReadOnlyList<Entry> Sorted(List<Entry> list) => list.OrderBy(e => e.Name, StringComparer.Ordinal).ToArray();

    /// <summary>One listed entry.</summary>
    /// <param name="Name">Name relative to its folder.</param>
    /// <param name="Kind">hf, gguf, json, text or text-folder.</param>
    /// <param name="Size">Bytes of a file (null for folders).</param>
    public sealed record Entry(string Name, string Kind, long? Size);
}
