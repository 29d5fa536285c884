// A model's safetensors weights as one name -> tensor table: a single file, or shards listed by
// model.safetensors.index.json ({"metadata": {...}, "weight_map": {tensor name: shard file name}}).
// Checks that every tensor named by the index is in its shard and that no tensor appears in two files.
using System.Text.Json;
using LoraSharp.Core.Tensors;

namespace LoraSharp.Formats.Safetensors;

/// <summary>One or more safetensors files read as one set of uniquely named tensors.</summary>
public sealed class SafetensorsSet : IDisposable
{
    private readonly List<SafetensorsFile> _files;
    private readonly Dictionary<string, SafetensorsFile> _owner;

    /// <summary>The files of the set.</summary>
    public IReadOnlyList<SafetensorsFile> Files => _files;

    /// <summary>Every tensor name, sorted.</summary>
    public IReadOnlyList<string> Names { get; }

    private SafetensorsSet(List<SafetensorsFile> files, Dictionary<string, SafetensorsFile> owner)
    {
        _files = files;
        _owner = owner;
        Names = owner.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// Opens the weights of a Hugging Face folder: model.safetensors.index.json (sharded) if present, else
    /// model.safetensors, else the folder's only *.safetensors file.
    /// </summary>
    public static SafetensorsSet OpenFolder(string folder)
    {
        string index = Path.Combine(folder, "model.safetensors.index.json");
        if (File.Exists(index)) return OpenIndex(index);
        string single = Path.Combine(folder, "model.safetensors");
        if (File.Exists(single)) return OpenFiles([single]);
        var all = Directory.GetFiles(folder, "*.safetensors");
        if (all.Length == 1) return OpenFiles(all);
        if (all.Length == 0)
            throw new FileNotFoundException($"{folder}: no model.safetensors, model.safetensors.index.json or other *.safetensors file.");
        throw new ModelFormatException(folder, null,
            $"has {all.Length} *.safetensors files but no model.safetensors.index.json saying which belong to the model; pass one file's path.");
    }

    /// <summary>Opens the shards listed by a model.safetensors.index.json.</summary>
    public static SafetensorsSet OpenIndex(string indexPath)
    {
        string dir = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        Dictionary<string, string> map = new(StringComparer.Ordinal);
        try
        {
            byte[] bytes = File.ReadAllBytes(indexPath);
            // JsonDocument checks string contents only when they are read; check the whole file up front.
            if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new ModelFormatException(indexPath, null, "is not valid UTF-8 text.");
            using var doc = JsonDocument.Parse(bytes);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(indexPath, null, $"must be a JSON object with a \"weight_map\", found {doc.RootElement.ValueKind}.");
            if (Json.JsonStrings.FirstInvalid(doc.RootElement) is { } bad)
                throw new ModelFormatException(indexPath, bad, "is not valid Unicode (an escape such as \\ud800 is half of a UTF-16 pair).");
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new ModelFormatException(indexPath, "weight_map", "missing or not an object of tensor name -> shard file.");
            foreach (var kv in wm.EnumerateObject())
            {
                if (kv.Value.ValueKind != JsonValueKind.String)
                    throw new ModelFormatException(indexPath, $"weight_map.{kv.Name}", "must be a shard file name.");
                string shard = kv.Value.GetString()!;
                if (shard.Contains('/') || shard.Contains('\\') || shard.Contains(".."))
                    throw new ModelFormatException(indexPath, $"weight_map.{kv.Name}", $"shard '{shard}' must be a plain file name in the same folder.");
                map[kv.Name] = shard;
            }
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(indexPath, null, $"is not valid JSON ({e.Message}).", e);
        }
        var shards = map.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).Select(s => Path.Combine(dir, s)).ToList();
        foreach (var s in shards)
            if (!File.Exists(s)) throw new ModelFormatException(indexPath, Path.GetFileName(s), "shard listed in weight_map is missing.");
        var set = OpenFiles(shards);
        try
        {
            foreach (var (name, shard) in map)
            {
                if (!set._owner.TryGetValue(name, out var f) || Path.GetFileName(f.Path) != shard)
                    throw new ModelFormatException(indexPath, name, $"weight_map says it is in '{shard}', but that shard does not contain it.");
            }
            return set;
        }
        catch
        {
            set.Dispose();
            throw;
        }
    }

    /// <summary>Opens the given files as one set; a tensor name found in two files is an error.</summary>
    public static SafetensorsSet OpenFiles(IEnumerable<string> paths)
    {
        var files = new List<SafetensorsFile>();
        var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (var path in paths)
            {
                var f = SafetensorsFile.Open(path);
                files.Add(f);
                foreach (var t in f.Tensors)
                {
                    if (owner.TryGetValue(t.Name, out var other))
                        throw new ModelFormatException(f.Path, t.Name, $"also appears in {other.Path}.");
                    owner[t.Name] = f;
                }
            }
            return new SafetensorsSet(files, owner);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    /// <summary>Header entry of a tensor.</summary>
    public SafetensorsTensorInfo Info(string name) => FileOf(name).Info(name);

    /// <summary>The file holding <paramref name="name"/>.</summary>
    public SafetensorsFile FileOf(string name) => _owner.TryGetValue(name, out var f) ? f
        : throw new KeyNotFoundException($"No tensor named '{name}' in {string.Join(", ", _files.Select(x => x.Path))}.");

    /// <summary>True when some file holds <paramref name="name"/>.</summary>
    public bool Contains(string name) => _owner.ContainsKey(name);

    /// <summary>A view of the tensor over its mapped file.</summary>
    public Tensor GetTensor(string name) => FileOf(name).GetTensor(name);

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
