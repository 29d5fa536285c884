// `lorasharp generate`: text from a model, optionally with adapters, streamed to stdout.
using System.CommandLine;
using LoraSharp.App;
using LoraSharp.Models.Generation;

namespace LoraSharp.Cli.Commands;

internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model", "-m") { Description = "Hugging Face model folder or .gguf file.", Required = true };
        var adapters = new Option<string[]>("--adapter", "-a") { Description = "PEFT adapter folder, optionally with a scale: path[:scale]. Repeatable." };
        var prompt = new Option<string>("--prompt", "-p") { Description = "The prompt.", DefaultValueFactory = _ => "" };
        var maxNew = new Option<int>("--max-new-tokens", "-n") { Description = "Most tokens to generate.", DefaultValueFactory = _ => 200 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 = greedy.", DefaultValueFactory = _ => 0.7f };
        var topK = new Option<int>("--top-k") { Description = "Keep the K most likely tokens (0 = off).", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold (1 = off).", DefaultValueFactory = _ => 1f };
        var minP = new Option<float>("--min-p") { Description = "Drop tokens below min_p x the top probability (0 = off).", DefaultValueFactory = _ => 0f };
        var repetition = new Option<float>("--repetition-penalty") { Description = "Penalty on repeated tokens (1 = off).", DefaultValueFactory = _ => 1f };
        var seed = new Option<int>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1234 };
        var stops = new Option<string[]>("--stop") { Description = "Stop when this string appears. Repeatable." };
        var baseDType = new Option<string?>("--base-dtype") { Description = Training.Settings.TrainingSettingsSchema.For("base_dtype") };
        var doubleQuant = new Option<bool>("--double-quant") { Description = Training.Settings.TrainingSettingsSchema.For("double_quant") };
        var chat = new Option<bool>("--chat") { Description = "Treat the prompt as a user message and apply the model's chat template." };
        var chatTemplate = new Option<string?>("--chat-template") { Description = "chatml, llama2, llama3, mistral, alpaca, zephyr, phi3 (default: the model's own Jinja chat_template, else chatml)." };
        var system = new Option<string?>("--system") { Description = "System message in chat mode." };

        var command = new Command("generate", "Generate text with a model and optional LoRA adapters, streamed as it is produced.");
        foreach (var o in new Option[] { model, adapters, prompt, maxNew, temperature, topK, topP, minP, repetition, seed, stops, baseDType, doubleQuant, chat, chatTemplate, system }) command.Options.Add(o);
        command.SetAction((parse, cancel) => Task.FromResult(CommandRunner.Run(parse.InvocationConfiguration.Error, () =>
        {
            var output = parse.InvocationConfiguration.Output;
            var request = new GenerateRequest
            {
                Model = parse.GetValue(model)!,
                Adapters = (parse.GetValue(adapters) ?? []).Select(AdapterSpec.Parse).ToArray(),
                Prompt = parse.GetValue(prompt) ?? "",
                BaseDType = parse.GetValue(baseDType),
                DoubleQuant = parse.GetValue(doubleQuant),
                Chat = parse.GetValue(chat),
                ChatTemplate = parse.GetValue(chatTemplate),
                System = parse.GetValue(system),
                Options = new GenerationOptions
                {
                    MaxNewTokens = parse.GetValue(maxNew),
                    StopStrings = parse.GetValue(stops) ?? [],
                    Sampling = new SamplingSettings
                    {
                        Temperature = parse.GetValue(temperature), TopK = parse.GetValue(topK), TopP = parse.GetValue(topP),
                        MinP = parse.GetValue(minP), RepetitionPenalty = parse.GetValue(repetition), Seed = parse.GetValue(seed),
                    },
                },
            };
            bool started = false;
            var result = GenerateJob.Run(request, text =>
            {
                if (!started) { if (!request.Chat) output.Write(request.Prompt); started = true; }
                output.Write(text);
                output.Flush();
            }, cancel);
            if (!started && !request.Chat) output.Write(request.Prompt);
            output.WriteLine();
            parse.InvocationConfiguration.Error.WriteLine(
                $"[{result.TokenIds.Length - result.PromptTokens} tokens, {result.TokensPerSecond:F1} tokens/s, stopped by {result.StopReason}]");
            return 0;
        })));
        return command;
    }
}
