// Peak resident memory per sweep run on Linux: writing "5" to /proc/self/clear_refs resets the kernel's high-water
// mark (VmHWM in /proc/self/status, Linux 4.0+), so each run's peak is its own and not an earlier run's. Elsewhere
// (or where /proc is read-only) Reset returns false and the sweep leaves the column empty rather than report a
// process-wide peak as the run's.
namespace LoraSharp.App.Sweeps;

internal static class PeakRss
{
    public static bool Reset()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return Read() != null;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    /// <summary>VmHWM in bytes, or null.</summary>
    public static long? Read()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal)
                    && long.TryParse(line[6..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture, out long kb))
                    return kb * 1024;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
