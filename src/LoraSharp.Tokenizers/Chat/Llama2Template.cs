// The Llama2 chat template (see ChatTemplate for the shared rendering and span rules).
namespace LoraSharp.Tokenizers.Chat;

/// <summary>Llama-2 chat: <c>&lt;s&gt;[INST] &lt;&lt;SYS&gt;&gt;\nsys\n&lt;&lt;/SYS&gt;&gt;\n\nuser [/INST] answer &lt;/s&gt;</c> (the HF template, contents stripped).</summary>
public sealed class Llama2Template : ChatTemplate
{
    /// <inheritdoc/>
    public override string Name => "llama2";
    /// <inheritdoc/>
    public override bool WritesBos => true;
    private protected override void RenderCore(IReadOnlyList<ChatMessage> m, bool gen, string bos, string eos, Writer w)
    {
        var (sys, first) = SplitSystem(m);
        for (int i = first; i < m.Count; i++)
        {
            string content = m[i].Content.Trim();
            if (m[i].Role == "user")
            {
                if (i == first && sys is not null) content = "<<SYS>>\n" + sys.Trim() + "\n<</SYS>>\n\n" + content;
                w.Put(bos + "[INST] " + content + " [/INST]");
            }
            else if (m[i].Role == "assistant") w.Assistant(" " + content + " " + eos);
            else w.Put("<<SYS>>\n" + content + "\n<</SYS>>\n\n");
        }
        // The Llama-2 template has no generation prompt: the text already ends with [/INST].
    }
}
