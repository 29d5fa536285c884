// How SentencePiece-style tokenizers prepend the space marker.
namespace LoraSharp.Tokenizers;

/// <summary>How a SentencePiece tokenizer prepends '▁' to the text (HF Prepend normalizer / Metaspace prepend_scheme).</summary>
public enum PrependScheme
{
    /// <summary>Never prepend (GGUF <c>add_space_prefix = false</c>).</summary>
    Never,
    /// <summary>Prepend to every run of text between added tokens (HF Prepend normalizer, llama.cpp <c>add_space_prefix</c>).</summary>
    Always,
    /// <summary>Prepend only to the run that starts the text (HF Metaspace <c>prepend_scheme: "first"</c>).</summary>
    First,
}
