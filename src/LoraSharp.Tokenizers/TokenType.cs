// Token types as GGUF stores them in tokenizer.ggml.token_type (llama.cpp's llama_token_type / SentencePiece's piece types).
namespace LoraSharp.Tokenizers;

/// <summary>Type of a vocabulary entry, numbered as in GGUF <c>tokenizer.ggml.token_type</c>.</summary>
public enum TokenType
{
    /// <summary>0: not set; treated like <see cref="Normal"/>.</summary>
    Undefined = 0,
    /// <summary>1: an ordinary piece produced by merges.</summary>
    Normal = 1,
    /// <summary>2: the unknown token (<c>&lt;unk&gt;</c>); a special token.</summary>
    Unknown = 2,
    /// <summary>3: a control token (<c>&lt;s&gt;</c>, <c>&lt;|eot_id|&gt;</c>); a special token.</summary>
    Control = 3,
    /// <summary>4: a user-defined piece; split out of the text before BPE, never produced by merges.</summary>
    UserDefined = 4,
    /// <summary>5: an unused slot; never produced.</summary>
    Unused = 5,
    /// <summary>6: a byte token <c>&lt;0xNN&gt;</c> used by byte fallback.</summary>
    Byte = 6,
}
