// The Zephyr chat template (see ChatTemplate for the shared rendering and span rules).
namespace LoraSharp.Tokenizers.Chat;

/// <summary>Zephyr: <c>&lt;|user|&gt;\ncontent&lt;/s&gt;\n&lt;|assistant|&gt;\nanswer&lt;/s&gt;\n</c>.</summary>
public sealed class ZephyrTemplate : ChatTemplate
{
    /// <inheritdoc/>
    public override string Name => "zephyr";
    /// <inheritdoc/>
    public override bool WritesBos => false;
    private protected override void RenderCore(IReadOnlyList<ChatMessage> m, bool gen, string bos, string eos, Writer w)
    {
        foreach (var msg in m)
        {
            w.Put("<|" + msg.Role + "|>\n");
            if (msg.Role == "assistant") w.Assistant(msg.Content + eos).Put("\n");
            else w.Put(msg.Content + eos + "\n");
        }
        if (gen) w.Put("<|assistant|>\n");
    }
}
