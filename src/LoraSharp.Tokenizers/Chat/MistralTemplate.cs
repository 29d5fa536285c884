// The Mistral chat template (see ChatTemplate for the shared rendering and span rules).
namespace LoraSharp.Tokenizers.Chat;

/// <summary>Mistral instruct (v0.2/v0.3 style): <c>&lt;s&gt;[INST] user [/INST]answer&lt;/s&gt;</c>; a system message is put before the first user text.</summary>
public sealed class MistralTemplate : ChatTemplate
{
    /// <inheritdoc/>
    public override string Name => "mistral";
    /// <inheritdoc/>
    public override bool WritesBos => true;
    private protected override void RenderCore(IReadOnlyList<ChatMessage> m, bool gen, string bos, string eos, Writer w)
    {
        var (sys, first) = SplitSystem(m);
        w.Put(bos);
        for (int i = first; i < m.Count; i++)
        {
            if (m[i].Role == "user")
            {
                string content = i == first && sys is not null ? sys + "\n\n" + m[i].Content : m[i].Content;
                w.Put("[INST] " + content + " [/INST]");
            }
            else if (m[i].Role == "assistant") w.Assistant(m[i].Content + eos);
        }
    }
}
