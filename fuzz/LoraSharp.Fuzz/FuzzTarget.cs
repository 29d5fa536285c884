// One parser under fuzz: a function from bytes to "parsed" or "rejected with one of the documented exception types",
// its seed inputs and its allocation bound. Anything else a target throws is a crash (see FuzzEngine).
// Not here: the mutation loop (FuzzEngine) or the targets themselves (Targets*.cs).
namespace LoraSharp.Fuzz;

/// <summary>A parser and how to feed it.</summary>
public sealed class FuzzTarget
{
    /// <summary>Short name used on the command line (e.g. "gguf").</summary>
    public required string Name { get; init; }

    /// <summary>What it parses, for listings and docs.</summary>
    public required string Parser { get; init; }

    /// <summary>Runs the parser on one input inside a private scratch folder. Must not catch anything itself.</summary>
    public required Action<byte[], FuzzWorkspace> Run { get; init; }

    /// <summary>Seed inputs (small, valid or nearly valid files).</summary>
    public required Func<IReadOnlyList<byte[]>> Seeds { get; init; }

    /// <summary>The exception types (exact types, not subclasses) that mean "rejected with a clear error".</summary>
    public required Type[] Rejections { get; init; }

    /// <summary>Extra words to splice into inputs (JSON punctuation, key names); empty for binary formats.</summary>
    public IReadOnlyList<byte[]> Dictionary { get; init; } = [];

    /// <summary>Allocation bound: a parse may allocate at most AllocPerByte x input length + AllocFixed bytes.</summary>
    public long AllocPerByte { get; init; } = 64;

    /// <summary>Fixed part of the allocation bound (tables every parse builds, e.g. a tokenizer's byte map).</summary>
    public long AllocFixed { get; init; } = 8L << 20;

    /// <summary>Inputs grow to at most this many bytes.</summary>
    public int MaxLength { get; init; } = 64 * 1024;

    /// <summary>True when <paramref name="e"/> is a documented rejection (exact type, with a message).</summary>
    public bool IsRejection(Exception e) => Array.IndexOf(Rejections, e.GetType()) >= 0 && !string.IsNullOrWhiteSpace(e.Message);
}
