// End to end in headless Chromium, driven over the DevTools protocol: open the page, fill the training form for a
// short raw-text run of stories260K, start it, watch the live chart gain points (pushed by the server), see the
// adapter appear, reload and find the run as it was, then generate with the new adapter side by side with the base.
// PreferenceCharts_CompareTab_AndCombineFields covers a dpo run's reward charts, the compare tab and the combine form.
// Screenshots of the tabs are saved under the test's output folder (screenshots/) and their paths printed.
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

    // A dpo run's preference charts on the training tab, then the compare tab opened from the adapters tab (and from
    // a #compare= address) with the runs' curves and their differing settings, and the combine form's TIES/DARE fields.
    [Fact]
    public async Task PreferenceCharts_CompareTab_AndCombineFields()
    {
        await using var web = await WebTestServer.StartAsync();
        await web.StartPreferenceTrainingAsync("pref", "dpo", maxSteps: 6);
        Assert.Equal("finished", (await web.WaitForEndAsync("pref")).GetProperty("status").GetString());
        // A second run to compare with: the same records, another rank in its settings.
        string copy = Path.Combine(web.Adapters, "pref-r8");
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(web.Adapters, "pref"))) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        string parameters = Path.Combine(copy, "training_parameters.json");
        var settings = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(parameters))!;
        settings["lora_rank"] = 8;
        File.WriteAllText(parameters, settings.ToJsonString());

        await using var browser = await Chromium.LaunchAsync(TimeSpan.FromSeconds(30));
        await using var page = await browser.OpenPageAsync();
        await page.SetViewportAsync(1400, 1100);
        await page.NavigateAsync(web.Server.Url, Timeout);
        await page.WaitForAsync("document.body.dataset.ready === '1' && document.querySelector('#status-line').dataset.status === 'finished'", Timeout,
            "the page to show the finished dpo run", "document.querySelector('#status-line').textContent");
        await page.EvaluateAsync(Helpers);

        // Rewards: chosen, rejected and margin for 6 steps, the evaluated margin at steps 3 and 6; accuracy likewise.
        Assert.False((await page.EvaluateAsync("document.querySelector('#pref-charts').hidden")).GetBoolean());
        Assert.Equal("4 20", (await page.EvaluateAsync("(d => d.series + ' ' + d.points)(document.querySelector('#rewards-chart').dataset)")).GetString());
        Assert.Equal("2 8", (await page.EvaluateAsync("(d => d.series + ' ' + d.points)(document.querySelector('#accuracy-chart').dataset)")).GetString());
        Assert.Contains(" / ", (await page.EvaluateAsync("document.querySelector('#m-rewards').textContent")).GetString());
        string shots = Path.Combine(AppContext.BaseDirectory, "screenshots");
        await Save(page, Path.Combine(shots, "web-ui-preference.png"));

        // The combine form shows the fields of the chosen method only, and checks density before sending (1.5 the
        // input's max refuses; 0 the form's own check).
        const string visible = "['#combine-rank', '#combine-density', '#combine-majority_sign_method', '#combine-seed'].map(s => document.querySelector(s).closest('label').hidden ? '-' : 'x').join('')";
        await page.EvaluateAsync("document.querySelector('#tabs button[data-tab=adapters]').click(); __set('#combine-method', 'dare_ties')");
        Assert.Equal("-xxx", (await page.EvaluateAsync(visible)).GetString());
        await page.EvaluateAsync("__set('#combine-method', 'ties_svd')");
        Assert.Equal("xxx-", (await page.EvaluateAsync(visible)).GetString());
        await page.EvaluateAsync("__set('#combine-method', 'linear')");
        Assert.Equal("----", (await page.EvaluateAsync(visible)).GetString());
        await page.EvaluateAsync("""
            __set('#combine-method', 'ties'); __set('#combine-density', 0); __set('#combine-out', 'never');
            document.querySelector('#adapters-table tr[data-name="pref"] input[type=checkbox]').click();
            document.querySelector('#combine-form button').click();
            """);
        await page.WaitForAsync("document.querySelector('#tool-message').textContent.startsWith('Density')", Timeout, "the density message",
            "document.querySelector('#tool-message').textContent");

        // Compare the ticked runs: both curves, the differing rank flagged, the address says what is shown.
        await page.EvaluateAsync("""
            document.querySelector('#adapters-table tr[data-name="pref-r8"] input[type=checkbox]').click();
            document.querySelector('#adapters-compare').click();
            """);
        await page.WaitForAsync("document.querySelector('#compare-view').dataset.runs === '2'", Timeout, "the two runs compared", "document.querySelector('#compare-message').textContent");
        Assert.True((await page.EvaluateAsync("document.querySelector('#tab-compare').classList.contains('active')")).GetBoolean());
        Assert.Equal("#compare=pref,pref-r8", (await page.EvaluateAsync("location.hash")).GetString());
        const string chart = "(d => d.series + ' ' + d.points)(document.querySelector('#compare-chart').dataset)";
        Assert.Equal("4 16", (await page.EvaluateAsync(chart)).GetString());   // 2 runs x (6 train + 2 eval points)
        Assert.True((await page.EvaluateAsync("document.querySelector('#compare-settings tr[data-setting=lora_rank]').classList.contains('differs')")).GetBoolean());
        Assert.False((await page.EvaluateAsync("document.querySelector('#compare-settings tr[data-setting=learning_rate]').classList.contains('differs')")).GetBoolean());
        await page.EvaluateAsync("__set('#compare-metric', 'accuracies'); document.querySelector('#compare-only-diff').click()");
        Assert.Equal("4 16", (await page.EvaluateAsync(chart)).GetString());
        Assert.Equal(1, (await page.EvaluateAsync("[...document.querySelectorAll('#compare-settings tbody tr')].filter(tr => getComputedStyle(tr).display !== 'none').length")).GetInt32());
        await Save(page, Path.Combine(shots, "web-ui-compare.png"));

        // An address opens the view by itself (how a sweep's runs are opened).
        await page.NavigateAsync(new Uri(web.Server.Url, "/#compare=pref-r8"), Timeout);
        await page.WaitForAsync("document.querySelector('#compare-view').dataset.runs === '1' && document.querySelector('#tab-compare').classList.contains('active')",
            Timeout, "the compare tab from the address", "document.querySelector('#compare-message').textContent");
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
