// The Llama3 chat template (see ChatTemplate for the shared rendering and span rules).
namespace LoraSharp.Tokenizers.Chat;

/// <summary>Llama-3 instruct: <c>&lt;|begin_of_text|&gt;&lt;|start_header_id|&gt;role&lt;|end_header_id|&gt;\n\ncontent&lt;|eot_id|&gt;</c>.</summary>
public sealed class Llama3Template : ChatTemplate
{
    /// <inheritdoc/>
    public override string Name => "llama3";
    /// <inheritdoc/>
    public override bool WritesBos => true;
    private protected override void RenderCore(IReadOnlyList<ChatMessage> m, bool gen, string bos, string eos, Writer w)
    {
        w.Put(bos);
        foreach (var msg in m)
        {
            w.Put("<|start_header_id|>" + msg.Role + "<|end_header_id|>\n\n");
            if (msg.Role == "assistant") w.Assistant(msg.Content.Trim() + "<|eot_id|>");
            else w.Put(msg.Content.Trim() + "<|eot_id|>");
        }
        if (gen) w.Put("<|start_header_id|>assistant<|end_header_id|>\n\n");
    }
}
