// The ChatML chat template (see ChatTemplate for the shared rendering and span rules).
namespace LoraSharp.Tokenizers.Chat;

/// <summary>ChatML (Qwen, SmolLM, many fine-tunes): <c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;\n</c>.</summary>
public sealed class ChatMLTemplate : ChatTemplate
{
    /// <inheritdoc/>
    public override string Name => "chatml";
    /// <inheritdoc/>
    public override bool WritesBos => false;
    private protected override void RenderCore(IReadOnlyList<ChatMessage> m, bool gen, string bos, string eos, Writer w)
    {
        foreach (var msg in m)
        {
            w.Put("<|im_start|>" + msg.Role + "\n");
            if (msg.Role == "assistant") w.Assistant(msg.Content + "<|im_end|>").Put("\n");
            else w.Put(msg.Content + "<|im_end|>\n");
        }
        if (gen) w.Put("<|im_start|>assistant\n");
    }
}
