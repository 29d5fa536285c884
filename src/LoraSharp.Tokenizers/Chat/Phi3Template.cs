// The Phi3 chat template (see ChatTemplate for the shared rendering and span rules).
namespace LoraSharp.Tokenizers.Chat;

/// <summary>Phi-3: <c>&lt;|user|&gt;\ncontent&lt;|end|&gt;\n&lt;|assistant|&gt;\nanswer&lt;|end|&gt;\n</c>.</summary>
public sealed class Phi3Template : ChatTemplate
{
    /// <inheritdoc/>
    public override string Name => "phi3";
    /// <inheritdoc/>
    public override bool WritesBos => false;
    private protected override void RenderCore(IReadOnlyList<ChatMessage> m, bool gen, string bos, string eos, Writer w)
    {
        foreach (var msg in m)
        {
            w.Put("<|" + msg.Role + "|>\n");
            if (msg.Role == "assistant") w.Assistant(msg.Content + "<|end|>").Put("\n");
            else w.Put(msg.Content + "<|end|>\n");
        }
        if (gen) w.Put("<|assistant|>\n");
    }
}
