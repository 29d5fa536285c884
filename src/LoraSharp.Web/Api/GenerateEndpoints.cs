// The generate tab's API: one prompt answered by the base model and then by base + adapter, streamed as
// server-sent events in the response to the POST (the page reads it with fetch, since EventSource cannot POST):
//   POST /api/generate  {model, adapter?, adapter_scale, prompt, max_new_tokens, temperature, top_k, top_p, min_p,
//                        repetition_penalty, seed, stop, chat, chat_template?, system?}
//   chat: the prompt is one user message rendered with the model's chat template (or chat_template), as
//   `lorasharp generate --chat` does.
//   events: "start" {side}, "text" {side, text}, "done" {side, tokens, tokens_per_second, stop_reason},
//           "error" {error}, "end" {}; side is "base" or "adapter".
// The model stays loaded between requests (ModelCache). Not here: sampling or chat templates (GenerateJob, TextGenerator).
using LoraSharp.App;
using LoraSharp.Models.Generation;
using LoraSharp.Web.Http;
using LoraSharp.Web.Library;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace LoraSharp.Web.Api;

/// <summary>Maps the generate endpoint.</summary>
internal static class GenerateEndpoints
{
    private const int MaxNewTokensLimit = 4096;

    public static void Map(WebApplication app, WebFolders folders, ErrorReporter errors, ModelCache models)
    {
        app.MapPost("/api/generate", async (HttpContext ctx, IHostApplicationLifetime lifetime) =>
        {
            var body = await WebJson.ReadAsync<GenerateBody>(ctx.Request);
            string model = folders.Models.Resolve(body.Model);
            string? adapter = string.IsNullOrEmpty(body.Adapter) ? null : folders.Adapters.Resolve(body.Adapter);
            var options = body.ToOptions();
            var chat = body.ToChat();
            RequireExisting(model, $"Model '{body.Model}' is not in the models folder.");
            if (adapter != null) RequireExisting(adapter, $"Adapter '{body.Adapter}' is not in the adapters folder.");

            using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, lifetime.ApplicationStopping);
            var sse = new SseStream();
            var work = Task.Run(() =>
            {
                try
                {
                    Answer(models, sse, "base", model, [], body.Prompt, chat, options, cancel.Token);
                    if (adapter != null) Answer(models, sse, "adapter", model, [new AdapterSpec(adapter, body.AdapterScale)], body.Prompt, chat, options, cancel.Token);
                    sse.Send("end", new { });
                }
                catch (OperationCanceledException)
                {
                    // the page went away
                }
                catch (Exception e)
                {
                    sse.Send("error", new { error = errors.Describe(e, "POST /api/generate").Message });
                }
                finally
                {
                    sse.Complete();
                }
            });
            await sse.PumpAsync(ctx, cancel.Token);
            await work;
        });
    }

    // Checked before the stream starts, so a wrong name is an ordinary 404 answer.
    private static void RequireExisting(string path, string message)
    {
        if (!File.Exists(path) && !Directory.Exists(path)) throw new FileNotFoundException(message);
    }

    private static void Answer(ModelCache models, SseStream sse, string side, string model, AdapterSpec[] adapters, string prompt, ChatMode? chat,
        GenerationOptions options, CancellationToken cancel)
    {
        sse.Send("start", new { side });
        void OnText(string text) => sse.Send("text", new { side, text });
        var result = models.Use(model, adapters, session => chat is { } c
            ? GenerateJob.RunChat(session, prompt, c.System, c.Template, options, OnText, cancel)
            : GenerateJob.Run(session, prompt, options, OnText, cancel), cancel);
        sse.Send("done", new { side, tokens = result.TokenIds.Length - result.PromptTokens, tokens_per_second = result.TokensPerSecond, stop_reason = result.StopReason });
    }

    internal sealed record ChatMode(string? Template, string? System);

    internal sealed record GenerateBody
    {
        public required string Model { get; init; }
        public string? Adapter { get; init; }
        public double AdapterScale { get; init; } = 1.0;
        public string Prompt { get; init; } = "";
        public int MaxNewTokens { get; init; } = new GenerationOptions().MaxNewTokens;
        public float Temperature { get; init; } = new SamplingSettings().Temperature;
        public int TopK { get; init; } = new SamplingSettings().TopK;
        public float TopP { get; init; } = new SamplingSettings().TopP;
        public float MinP { get; init; } = new SamplingSettings().MinP;
        public float RepetitionPenalty { get; init; } = new SamplingSettings().RepetitionPenalty;
        public int Seed { get; init; } = new SamplingSettings().Seed;
        public string[] Stop { get; init; } = [];
        public bool Chat { get; init; }
        public string? ChatTemplate { get; init; }
        public string? System { get; init; }

        // Checked before the stream starts, so an unknown template is a 400 answer.
        public ChatMode? ToChat()
        {
            if (!Chat) return null;
            string? template = string.IsNullOrWhiteSpace(ChatTemplate) ? null : ChatTemplate;
            if (template != null)
            {
                try { GenerateJob.CheckChatTemplateName(template); }
                catch (Tokenizers.TokenizerFormatException e) { throw new Core.UserErrorException($"chat_template: {e.Message}", e); }
            }
            return new ChatMode(template, string.IsNullOrEmpty(System) ? null : System);
        }

        public GenerationOptions ToOptions()
        {
            if (MaxNewTokens is < 1 or > MaxNewTokensLimit) throw new Core.UserErrorException($"max_new_tokens must be between 1 and {MaxNewTokensLimit} (is {MaxNewTokens}).");
            if (!double.IsFinite(AdapterScale)) throw new Core.UserErrorException("adapter_scale must be a number.");
            var sampling = new SamplingSettings { Temperature = Temperature, TopK = TopK, TopP = TopP, MinP = MinP, RepetitionPenalty = RepetitionPenalty, Seed = Seed };
            sampling.Validate();
            return new GenerationOptions { MaxNewTokens = MaxNewTokens, Sampling = sampling, StopStrings = Stop.Where(s => !string.IsNullOrEmpty(s)).ToArray() };
        }
    }
}
