// End to end in headless Chromium, driven over the DevTools protocol: open the page, fill the training form for a
// short raw-text run of stories260K, start it, watch the live chart gain points (pushed by the server), see the
// adapter appear, reload and find the run as it was, then generate with the new adapter side by side with the base.
// Screenshots of the three tabs are saved under the test's output folder (screenshots/) and their paths printed.
using LoraSharp.Web.Tests.Browser;
using Xunit.Abstractions;

namespace LoraSharp.Web.Tests;

public sealed class BrowserTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private const int Steps = 40;

    // Sets form fields the way typing does (input and change events fire).
    private const string Helpers = """
        window.__set = (selector, value) => {
          const e = document.querySelector(selector);
          if (!e) throw new Error('no element ' + selector);
          e.value = String(value);
          e.dispatchEvent(new Event('input', { bubbles: true }));
          e.dispatchEvent(new Event('change', { bubbles: true }));
        };
        """;

    [Fact]
    public async Task TrainingTab_ChartGrowsLive_AdapterAppears_ThenGenerateComparesBaseAndAdapter()
    {
        await using var web = await WebTestServer.StartAsync();
        await using var browser = await Chromium.LaunchAsync(TimeSpan.FromSeconds(30));
        await using var page = await browser.OpenPageAsync();
        await page.SetViewportAsync(1400, 1000);
        await page.NavigateAsync(web.Server.Url, Timeout);
        await page.WaitForAsync("document.body.dataset.ready === '1'", Timeout, "the page to load its lists", "document.querySelector('#server-note').textContent");
        await page.EvaluateAsync(Helpers);

        // The form: every setting with its default and help; lora_alpha follows 2 x rank until edited.
        Assert.Equal("256", (await page.EvaluateAsync("document.querySelector('#f-cutoff_len').value")).GetString());
        Assert.Contains("Longest sequence in tokens", (await page.EvaluateAsync("document.querySelector('#f-cutoff_len').closest('.field').textContent")).GetString());
        await page.EvaluateAsync("""
            document.querySelector('#train-model').value = 'stories260K-hf';
            document.querySelector('input[name=data-kind][value=raw]').click();
            __set('#f-lora_name', 'browser-lora'); __set('#f-raw_text_file', 'war-and-peace-6k.txt');
            __set('#f-cutoff_len', 64); __set('#f-overlap_len', 16); __set('#f-micro_batch_size', 4); __set('#f-batch_size', 4);
            __set('#f-max_steps', 40); __set('#f-eval_split', 0.2); __set('#f-eval_steps', 10); __set('#f-learning_rate', 0.003);
            __set('#f-warmup_steps', 1); __set('#f-lora_rank', 4); __set('#f-lora_dropout', 0);
            """);
        Assert.Equal("8", (await page.EvaluateAsync("document.querySelector('#f-lora_alpha').value")).GetString());

        // Record every point count the chart shows, then start.
        await page.EvaluateAsync("""
            window.__counts = [];
            const chart = document.querySelector('#loss-chart');
            new MutationObserver(() => __counts.push(Number(chart.dataset.trainPoints))).observe(chart, { attributes: true, attributeFilter: ['data-train-points'] });
            document.querySelector('#start').click();
            """);
        const string status = "document.querySelector('#status-line').textContent + ' | ' + document.querySelector('#train-message').textContent";
        await page.WaitForAsync($"document.querySelector('#status-line').dataset.status === 'finished'", Timeout, "the training to finish", status);
        await page.WaitForAsync($"Number(document.querySelector('#loss-chart').dataset.trainPoints) === {Steps}", Timeout, $"{Steps} points on the chart", "JSON.stringify(__counts)");
        var counts = (await page.EvaluateAsync("__counts")).EnumerateArray().Select(c => c.GetInt32()).Where(c => c > 0).Distinct().ToArray();
        Assert.True(counts.Length >= 3, $"the chart should gain points as steps arrive, but showed only [{string.Join(", ", counts)}]");
        Assert.Equal(counts.Order(), counts);
        Assert.Equal(4, (await page.EvaluateAsync("Number(document.querySelector('#loss-chart').dataset.evalPoints)")).GetInt32());
        Assert.Equal($"{Steps} / {Steps}", (await page.EvaluateAsync("document.querySelector('#m-step').textContent")).GetString());
        await page.WaitForAsync("document.querySelector('#adapters-table tr[data-name=\"browser-lora\"]') && document.querySelector('#gen-adapter option[value=\"browser-lora\"]')",
            Timeout, "the adapter to appear in the lists");
        string shots = Path.Combine(AppContext.BaseDirectory, "screenshots");
        await Save(page, Path.Combine(shots, "web-ui-training.png"));

        // A reload shows the run as it is.
        await page.NavigateAsync(web.Server.Url, Timeout);
        await page.WaitForAsync($"Number(document.querySelector('#loss-chart').dataset.trainPoints) === {Steps} && document.querySelector('#status-line').dataset.status === 'finished'",
            Timeout, "the reloaded page to show the finished run");
        await page.EvaluateAsync(Helpers);

        // Generate with the new adapter, side by side with the base.
        await page.EvaluateAsync("""
            document.querySelector('#tabs button[data-tab=generate]').click();
            document.querySelector('#gen-model').value = 'stories260K-hf';
            document.querySelector('#gen-adapter').value = 'browser-lora';
            __set('#gen-prompt', 'Once upon a time'); __set('#gen-max_new_tokens', 24); __set('#gen-temperature', 0);
            document.querySelector('#generate').click();
            """);
        await page.WaitForAsync("document.querySelector('#gen-message').textContent === 'done.'", Timeout, "both answers to finish",
            "document.querySelector('#gen-message').textContent");
        foreach (var side in new[] { "base", "adapter" })
        {
            string text = (await page.EvaluateAsync($"document.querySelector('#out-{side}').textContent")).GetString()!;
            Assert.StartsWith("Once upon a time", text);
            Assert.True(text.Length > "Once upon a time".Length + 5, $"{side} answer: '{text}'");
            Assert.Contains("24 tokens", (await page.EvaluateAsync($"document.querySelector('#stat-{side}').textContent")).GetString());
        }
        await Save(page, Path.Combine(shots, "web-ui-generate.png"));

        // Chat mode: the same prompt as a user message in the ChatML template gets another answer.
        string rawBase = (await page.EvaluateAsync("document.querySelector('#out-base').textContent")).GetString()!;
        await page.EvaluateAsync("""
            document.querySelector('#gen-chat').checked = true;
            document.querySelector('#gen-chat_template').value = 'chatml';
            document.querySelector('#gen-adapter').value = '';
            document.querySelector('#gen-message').textContent = '';
            document.querySelector('#generate').click();
            """);
        await page.WaitForAsync("document.querySelector('#gen-message').textContent === 'done.'", Timeout, "the chat answer to finish",
            "document.querySelector('#gen-message').textContent");
        string chatBase = (await page.EvaluateAsync("document.querySelector('#out-base').textContent")).GetString()!;
        Assert.StartsWith("Once upon a time", chatBase);
        Assert.NotEqual(rawBase, chatBase);

        // The adapters tab: the new adapter's row; export it and compare perplexities.
        await page.EvaluateAsync("""
            document.querySelector('#tabs button[data-tab=adapters]').click();
            document.querySelector('#adapters-table tr[data-name="browser-lora"] input[type=checkbox]').click();
            document.querySelector('#export-form button').click();
            """);
        await page.WaitForAsync("document.querySelector('#tool-message').textContent.startsWith('exported')", Timeout, "the export",
            "document.querySelector('#tool-message').textContent");
        await page.WaitForAsync("document.querySelector('#adapters-table tr[data-name=\"browser-lora.gguf\"]')", Timeout, "the exported file in the list");
        await page.EvaluateAsync("""
            document.querySelector('#adapters-table tr[data-name="browser-lora"] input[type=checkbox]').checked = true;
            __set('#ppl-max_tokens', 300); __set('#ppl-max_length', 64);
            document.querySelector('#perplexity-form button').click();
            """);
        await page.WaitForAsync("document.querySelectorAll('#ppl-results tr').length === 2 && document.querySelector('#tool-message').textContent === 'perplexity done.'",
            Timeout, "perplexity of base and adapter", "document.querySelector('#tool-message').textContent");
        await Save(page, Path.Combine(shots, "web-ui-adapters.png"));
        Assert.True(page.Errors.Count == 0, page.ErrorsText());
    }

    private async Task Save(DevToolsPage page, string path)
    {
        await page.ScreenshotAsync(path);
        Assert.True(new FileInfo(path).Length > 10_000, $"{path} is too small to be a screenshot");
        output.WriteLine($"screenshot: {path}");
        Console.WriteLine($"screenshot: {path}");
    }
}
