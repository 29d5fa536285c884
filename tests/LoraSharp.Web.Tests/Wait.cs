// Waiting in tests: poll a condition until a deadline, then fail saying what was awaited. No sleep ever stands
// in for synchronisation; the short delay between polls only keeps the loop from spinning.
namespace LoraSharp.Web.Tests;

internal static class Wait
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    /// <summary>Polls <paramref name="condition"/> until it is true; throws naming <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, Func<Task<string>>? state = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (await condition()) return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:F0} s waiting for {what}." + (state == null ? "" : $" Last state: {await state()}"));
            await Task.Delay(Poll);
        }
    }
}
