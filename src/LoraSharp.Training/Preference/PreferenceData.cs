// Preference datasets (JSON array or JSONL, as every dataset here): one pair per row, either
//   text:  {"prompt": "...", "chosen": "...", "rejected": "..."}
//   chat:  {"prompt": [messages], "chosen": [messages], "rejected": [messages]}   (TRL's conversational form), or
//          {"chosen": [messages], "rejected": [messages]}   (the prompt is the messages both start with, as Anthropic HH)
// with messages {"role": "system"|"user"|"assistant", "content": "..."}. Text rows: the prompt is encoded with the
// tokenizer's special tokens (BOS), each response without them, then EOS appended. Chat rows are rendered by the chat
// formatter; the prompt is the rendered text up to the first response character (the assistant header included),
// the response the rest (with the end-of-turn marker), each tokenized on its own as TRL does. Pairs longer than the
// cutoff are dropped (excess_length drop) or have their responses cut (truncate); the counts are reported.
// Not here: batching (PreferencePair.PackedBatch), the loss (PreferenceLoss), the loop (PreferenceRun).
using System.Text.Json;
using LoraSharp.Tokenizers;
using LoraSharp.Training.Data;

namespace LoraSharp.Training.Preference;

/// <summary>Pairs read from a file, with what was dropped.</summary>
public sealed record PreferenceSet(IReadOnlyList<PreferencePair> Pairs, int Dropped, int Truncated, string Source);

/// <summary>Reads preference datasets.</summary>
public static class PreferenceData
{
    /// <summary>Reads and tokenizes <paramref name="path"/>; <paramref name="chat"/> renders chat rows (ChatML when null).</summary>
    public static PreferenceSet Load(string path, Tokenizer tokenizer, int cutoff, bool truncate, IChatFormatter? chat = null)
        => Build(JsonRows.Read(path), path, tokenizer, cutoff, truncate, chat);

    /// <summary>
    /// The training pairs of <paramref name="path"/> and validation pairs: <paramref name="evalPath"/>'s, or a seeded
    /// <paramref name="evalSplit"/> fraction of the rows held out (at least one row each side), or none.
    /// </summary>
    public static (PreferenceSet Train, PreferenceSet? Eval) LoadWithEval(string path, string? evalPath, double evalSplit, ulong seed,
        Tokenizer tokenizer, int cutoff, bool truncate, IChatFormatter? chat = null)
    {
        var rows = JsonRows.Read(path);
        PreferenceSet? eval = null;
        if (evalPath != null)
        {
            eval = Load(evalPath, tokenizer, cutoff, truncate, chat);
        }
        else if (evalSplit > 0 && rows.Count > 1)
        {
            var order = Enumerable.Range(0, rows.Count).ToArray();
            DataRng.ForStream(seed, 0xE7A1).Shuffle(order);
            int n = Math.Clamp((int)Math.Round(rows.Count * evalSplit), 1, rows.Count - 1);
            var held = order[..n].Order().Select(i => rows[i]).ToList();
            rows = order[n..].Order().Select(i => rows[i]).ToList();
            eval = Build(held, path + " (eval split)", tokenizer, cutoff, truncate, chat);
        }
        return (Build(rows, path, tokenizer, cutoff, truncate, chat), eval);
    }

    /// <summary>Tokenizes parsed rows.</summary>
    public static PreferenceSet Build(IReadOnlyList<DatasetRow> rows, string source, Tokenizer tokenizer, int cutoff, bool truncate, IChatFormatter? chat = null)
    {
        var pairs = new List<PreferencePair>();
        int dropped = 0, truncated = 0;
        foreach (var row in rows)
        {
            var (prompt, chosen, rejected) = Encode(row, source, tokenizer, chat ?? new ChatMLFormatter());
            if (prompt.Length + Math.Max(chosen.Length, rejected.Length) > cutoff)
            {
                if (!truncate || prompt.Length >= cutoff) { dropped++; continue; }
                chosen = chosen[..Math.Min(chosen.Length, cutoff - prompt.Length)];
                rejected = rejected[..Math.Min(rejected.Length, cutoff - prompt.Length)];
                truncated++;
            }
            pairs.Add(new PreferencePair(prompt, chosen, rejected));
        }
        if (pairs.Count == 0)
            throw new DatasetException(rows.Count == 0 ? "has no rows." : $"every one of its {rows.Count} pairs is longer than cutoff_len {cutoff} tokens; raise cutoff_len or use excess_length truncate.", source);
        return new PreferenceSet(pairs, dropped, truncated, source);
    }

    private static (int[] Prompt, int[] Chosen, int[] Rejected) Encode(DatasetRow row, string source, Tokenizer tok, IChatFormatter chat)
    {
        var v = row.Value;
        DatasetException Error(string message) => new(message, source, row.Number, row.Line);
        const string shape = "a preference row needs \"prompt\", \"chosen\" and \"rejected\" (strings), or chat form \"chosen\"/\"rejected\" " +
                             "as [{\"role\": ..., \"content\": ...}] lists (with \"prompt\" as a list, or a shared first part)";
        if (!v.TryGetProperty("chosen", out var c)) throw Error($"{shape}; this row has no \"chosen\" ({JsonRows.Describe(v)}).");
        if (!v.TryGetProperty("rejected", out var r)) throw Error($"{shape}; this row has no \"rejected\" ({JsonRows.Describe(v)}).");
        if (c.ValueKind == JsonValueKind.String)
        {
            if (r.ValueKind != JsonValueKind.String) throw Error($"\"chosen\" is a string but \"rejected\" is {JsonRows.Kind(r.ValueKind)}; give both as strings or both as message lists.");
            if (!v.TryGetProperty("prompt", out var p) || p.ValueKind != JsonValueKind.String)
                throw Error($"{shape}; text rows need a string \"prompt\" ({JsonRows.Describe(v)}).");
            var prompt = tok.EncodeToIds(p.GetString()!, addSpecialTokens: true);
            return (prompt, Response(tok, c.GetString()!), Response(tok, r.GetString()!));
        }
        if (c.ValueKind != JsonValueKind.Array || r.ValueKind != JsonValueKind.Array)
            throw Error($"{shape}; \"chosen\" is {JsonRows.Kind(c.ValueKind)} and \"rejected\" is {JsonRows.Kind(r.ValueKind)}.");
        var cm = Messages(c, "chosen", Error);
        var rm = Messages(r, "rejected", Error);
        List<(string, string)> pm;
        if (v.TryGetProperty("prompt", out var pl))
        {
            if (pl.ValueKind != JsonValueKind.Array) throw Error($"chat rows give \"prompt\" as a message list, not {JsonRows.Kind(pl.ValueKind)}.");
            pm = Messages(pl, "prompt", Error);
        }
        else
        {
            int k = 0;
            while (k < cm.Count && k < rm.Count && cm[k] == rm[k]) k++;
            pm = cm[..k];
            cm = cm[k..];
            rm = rm[k..];
        }
        if (cm.Count == 0 || rm.Count == 0) throw Error("chosen and rejected must each add at least one message after the prompt.");
        var (promptText, chosenText) = Split(chat, pm, cm, Error, "chosen");
        var (promptText2, rejectedText) = Split(chat, pm, rm, Error, "rejected");
        if (promptText != promptText2) throw Error("the chosen and rejected renderings differ before the responses; the prompt must be the same for both.");
        return (tok.EncodeToIds(promptText, addSpecialTokens: true), tok.EncodeToIds(chosenText, addSpecialTokens: false), tok.EncodeToIds(rejectedText, addSpecialTokens: false));
    }

    private static int[] Response(Tokenizer tok, string text)
    {
        var ids = tok.EncodeToIds(text, addSpecialTokens: false);
        return tok.EosTokenId >= 0 ? [.. ids, tok.EosTokenId] : ids;
    }

    // Renders prompt + response; the response starts at the first assistant span that lies in the response messages.
    private static (string Prompt, string Response) Split(IChatFormatter chat, List<(string, string)> prompt, List<(string, string)> response,
        Func<string, DatasetException> error, string which)
    {
        var all = new List<(string Role, string Content)>(prompt);
        all.AddRange(response);
        string text = chat.Render(all, out var spans);
        int promptAssistants = prompt.Count(m => m.Item1 == "assistant");
        if (spans.Count <= promptAssistants) throw error($"\"{which}\" has no assistant message to train on.");
        int start = spans[promptAssistants].Start;
        return (text[..start], text[start..]);
    }

    private static List<(string Role, string Content)> Messages(JsonElement list, string field, Func<string, DatasetException> error)
    {
        var result = new List<(string, string)>();
        int i = 0;
        foreach (var m in list.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String
                || !m.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                throw error($"{field}[{i}] must be {{\"role\": \"...\", \"content\": \"...\"}} ({JsonRows.Describe(m)}).");
            result.Add((role.GetString()!, content.GetString()!));
            i++;
        }
        return result;
    }
}
