// JsonDocument checks a string's escapes only when the string is read: "\ud800" (a lone UTF-16 surrogate) parses,
// and GetString() or a property's Name then throws InvalidOperationException deep inside whoever reads it. Readers
// of user files call FirstInvalid once after parsing and turn a hit into their own clear error.
using System.Text.Json;

namespace LoraSharp.Formats.Json;

/// <summary>Finds strings a JsonDocument accepted but cannot turn into .NET strings.</summary>
public static class JsonStrings
{
    /// <summary>The JSON path ($.a[2].b) of the first property name or string value that is not valid Unicode, or null.</summary>
    public static string? FirstInvalid(JsonElement element) => AllValid(element) ? null : Walk(element, "$");

    // The cheap pass: no paths built unless something is wrong.
    private static bool AllValid(JsonElement e)
    {
        try { Touch(e); return true; }
        catch (InvalidOperationException) { return false; }
    }

    private static void Touch(JsonElement e)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object: foreach (var p in e.EnumerateObject()) { _ = p.Name; Touch(p.Value); } break;
            case JsonValueKind.Array: foreach (var item in e.EnumerateArray()) Touch(item); break;
            case JsonValueKind.String: _ = e.GetString(); break;
        }
    }

    private static string? Walk(JsonElement e, string path)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    string name;
                    try { name = p.Name; }
                    catch (InvalidOperationException) { return path + ".<name>"; }
                    if (Walk(p.Value, path + "." + name) is { } bad) return bad;
                }
                return null;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in e.EnumerateArray())
                    if (Walk(item, $"{path}[{i++}]") is { } bad) return bad;
                return null;
            case JsonValueKind.String:
                try { _ = e.GetString(); return null; }
                catch (InvalidOperationException) { return path; }
            default:
                return null;
        }
    }
}
