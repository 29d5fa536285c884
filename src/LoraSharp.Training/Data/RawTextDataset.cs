// Raw-text datasets (webui "Raw text file"): a .txt file, or a folder of .txt files read in natural name order.
// Steps, following webui's do_train: drop '\r'; split at the hard-cut string (file boundaries are hard cuts too;
// webui concatenates files without a separator); skip blocks whose trimmed text has min_chars characters or fewer;
// tokenize each block once (with character offsets), append EOS when add_eos_token is set; cut the block's tokens
// into windows of W = cutoff_len tokens (less one when the tokenizer adds BOS) starting every W - overlap_len tokens
// (webui's split_chunks; webui uses cutoff_len - overlap_len and then loses each chunk's last token when re-encoding
// with BOS truncates it to cutoff_len, so here overlap_len is exactly the tokens two chunks share); move each
// window's edges to newlines within newline_favor_len characters (cut_chunk_for_newline); prepend BOS. Every token is trained.
// Two deliberate differences from webui, both so the model sees exactly the tokens the text was cut into:
// the newline cut drops whole tokens by their character offsets instead of decoding and re-tokenizing the chunk,
// and the windows stop at the first one that reaches the block's end (webui also emits the later windows, which
// lie wholly inside that one and would train their tokens twice).
using LoraSharp.Tokenizers;

namespace LoraSharp.Training.Data;

/// <summary>Builds samples from plain text.</summary>
public static class RawTextDataset
{
    /// <summary>Reads a .txt file or every .txt file of a folder (natural sort) and chunks it.</summary>
    public static BuiltDataset Build(string path, Tokenizer tokenizer, RawTextOptions options)
    {
        ArgumentNullException.ThrowIfNull(path);
        var texts = new List<string>();
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path, "*.txt").OrderBy(f => Path.GetFileName(f), NaturalSort.Instance).ToList();
            if (files.Count == 0) throw new DatasetException("the folder holds no .txt files; put the training text in one or more .txt files there.", path);
            foreach (var f in files) texts.Add(File.ReadAllText(f));
        }
        else if (File.Exists(path)) texts.Add(File.ReadAllText(path));
        else throw new DatasetException("the raw text file or folder does not exist.", path);
        return Build(texts, path, tokenizer, options);
    }

    /// <summary>Chunks texts given in memory (each text is also a hard cut); <paramref name="source"/> names them in errors.</summary>
    public static BuiltDataset Build(IReadOnlyList<string> texts, string source, Tokenizer tokenizer, RawTextOptions options)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        SampleEncoder.CheckCutoff(options.CutoffLength, options.ContextLength);
        if (options.OverlapLength < 0) throw new ArgumentOutOfRangeException(nameof(options), $"overlap_len is {options.OverlapLength}; it must be 0 or more.");
        if (options.NewlineFavorLength < 0) throw new ArgumentOutOfRangeException(nameof(options), $"newline_favor_len is {options.NewlineFavorLength}; it must be 0 or more.");
        if (options.MinChars < 0) throw new ArgumentOutOfRangeException(nameof(options), $"min_chars is {options.MinChars}; it must be 0 or more.");
        if (options.AddEosToken && tokenizer.EosTokenId < 0) throw new DatasetException("add_eos_token is set but the tokenizer has no EOS token; turn add_eos_token off.");

        int bos = tokenizer.AddBos && tokenizer.BosTokenId >= 0 ? tokenizer.BosTokenId : -1;
        int window = options.CutoffLength - (bos >= 0 ? 1 : 0);
        int step = window - options.OverlapLength;
        if (step <= 0)
            throw new DatasetException(
                $"overlap_len ({options.OverlapLength}) must be smaller than the {window} text tokens of a chunk (cutoff_len {options.CutoffLength}{(bos >= 0 ? " less one for BOS" : "")}).");
        string cut = (options.HardCutString ?? "").Replace("\\n", "\n");
        var enc = new SampleEncoder(tokenizer, options.CutoffLength, ExcessLength.Truncate);
        int blocks = 0, skipped = 0;
        foreach (string raw in texts)
        {
            string text = raw.Replace("\r", "");
            string[] parts = cut.Length > 0 ? text.Split(cut) : [text];
            foreach (string part in parts)
            {
                blocks++;
                int chars = part.AsSpan().Trim().Length;
                if (chars == 0 || chars <= options.MinChars) { skipped++; continue; }
                var tokens = enc.Encode(part, addSpecialTokens: false, options.ParseSpecialTokens);
                if (options.AddEosToken) tokens.Add(new EncodedToken(tokenizer.EosTokenId, tokenizer.IdToToken(tokenizer.EosTokenId) ?? "", part.Length, 0));
                for (int i = 0; i < tokens.Count; i += step)
                {
                    int end = Math.Min(i + window, tokens.Count);
                    AddChunk(enc, part, tokens, i, end, bos, options.NewlineFavorLength);
                    if (end == tokens.Count) break;
                }
            }
        }
        return enc.Finish(source, blocks, new Dictionary<string, string> { ["template_type"] = "raw_text" }, skipped,
            shortBlockHint: $" ({options.MinChars}); lower min_chars or check hard_cut_string \"{options.HardCutString}\"");
    }

    private static void AddChunk(SampleEncoder enc, string part, List<EncodedToken> tokens, int from, int to, int bos, int favor)
    {
        int cs = tokens[from].Index, ce = tokens[to - 1].End;
        if (favor > 0)
        {
            int first = part.IndexOf('\n', cs, ce - cs);
            if (first >= 0 && first - cs < favor) cs = first + 1;
            int last = cs < ce ? part.LastIndexOf('\n', ce - 1, ce - cs) : -1;
            if (last >= 0 && ce - last < favor) ce = last;
        }
        var ids = new List<int>(to - from + 1);
        if (bos >= 0) ids.Add(bos);
        for (int i = from; i < to; i++)
        {
            var t = tokens[i];
            if (t.Index >= cs && t.End <= ce) ids.Add(t.Id);
        }
        if (ids.Count - (bos >= 0 ? 1 : 0) == 0) return;
        int[] arr = [.. ids];
        enc.Add(arr, (int[])arr.Clone());
    }
}
