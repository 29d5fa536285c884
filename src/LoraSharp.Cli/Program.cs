// Entry point of the `lorasharp` command.
namespace LoraSharp.Cli;

internal static class Program
{
    private static int Main(string[] args)
    {
        // Several ranks of an MPI job on one machine share its cores: without LORASHARP_THREADS each takes its share.
        if (Training.Distributed.Communicator.LaunchedByMpi && Environment.GetEnvironmentVariable("LORASHARP_THREADS") is null or "")
            Environment.SetEnvironmentVariable("LORASHARP_THREADS", Math.Max(1, Environment.ProcessorCount / Training.Distributed.Communicator.LocalRanks).ToString(System.Globalization.CultureInfo.InvariantCulture));
        return CliApp.Run(args);
    }
}
