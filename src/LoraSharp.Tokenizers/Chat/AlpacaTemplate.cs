// The Alpaca chat template (see ChatTemplate for the shared rendering and span rules).
namespace LoraSharp.Tokenizers.Chat;

/// <summary>Alpaca: <c>system\n\n### Instruction:\nuser\n\n### Response:\nanswer&lt;/s&gt;\n\n</c>.</summary>
public sealed class AlpacaTemplate : ChatTemplate
{
    /// <inheritdoc/>
    public override string Name => "alpaca";
    /// <inheritdoc/>
    public override bool WritesBos => false;
    private protected override void RenderCore(IReadOnlyList<ChatMessage> m, bool gen, string bos, string eos, Writer w)
    {
        foreach (var msg in m)
        {
            if (msg.Role == "system") w.Put(msg.Content + "\n\n");
            else if (msg.Role == "user") w.Put("### Instruction:\n" + msg.Content + "\n\n");
            else w.Put("### Response:\n").Assistant(msg.Content + eos).Put("\n\n");
        }
        if (gen) w.Put("### Response:\n");
    }
}
