// A PEFT config value that is either one string or a list of strings: target_modules (a list of module-name
// suffixes, or one string that PEFT treats as a full-match regex) and layers_pattern.
namespace LoraSharp.Formats.Peft;

/// <summary>One string (for target_modules: a regex) or a list of strings.</summary>
public sealed record PeftStringOrList
{
    private PeftStringOrList(string? text, IReadOnlyList<string>? items)
    {
        Text = text;
        Items = items;
    }

    /// <summary>The single string (a regex for target_modules), or null when this is a list.</summary>
    public string? Text { get; }

    /// <summary>The list, or null when this is a single string.</summary>
    public IReadOnlyList<string>? Items { get; }

    /// <summary>Whether this is a list.</summary>
    public bool IsList => Items is not null;

    /// <summary>A list of names, e.g. ["q_proj", "v_proj"].</summary>
    public static PeftStringOrList FromList(IEnumerable<string> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        return new PeftStringOrList(null, items.ToArray());
    }

    /// <summary>A single string, e.g. a regex <c>.*\.(q|v)_proj</c> or "all-linear".</summary>
    public static PeftStringOrList FromString(string text) => new(text ?? throw new ArgumentNullException(nameof(text)), null);

    /// <summary>A list from an array.</summary>
    public static implicit operator PeftStringOrList(string[] items) => FromList(items);

    /// <summary>A single string.</summary>
    public static implicit operator PeftStringOrList(string text) => FromString(text);

    /// <inheritdoc />
    public bool Equals(PeftStringOrList? other)
        => other is not null && Text == other.Text
           && (Items is null ? other.Items is null : other.Items is not null && Items.SequenceEqual(other.Items));

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(Text);
        if (Items is not null) foreach (string s in Items) h.Add(s);
        return h.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => Items is null ? $"\"{Text}\"" : "[" + string.Join(", ", Items) + "]";
}
