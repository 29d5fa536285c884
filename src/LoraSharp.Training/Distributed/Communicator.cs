// How a process finds its communicator, and the agreement step that turns one rank's failure into the same clear error
// on every rank. A job started by Open MPI's mpirun has OMPI_COMM_WORLD_SIZE in its environment (PMI_SIZE under
// Slurm's srun); only then is libmpi loaded. Agree: every rank reports whether it failed; if any did, the lowest
// failing rank's message is broadcast and every rank throws the same RankFailedException, so rank 0 prints it and
// every rank leaves through MPI_Finalize. Fault injection for tests: LORASHARP_FAULT=RANK:STEP:throw|exit|hang makes RANK
// fail at optimizer step STEP (throw: a UserErrorException there; exit: the process ends at once with code 3, as a
// crash; hang: it sleeps forever, so the others' collective timeout must end the job).
using System.Globalization;
using System.Text;

namespace LoraSharp.Training.Distributed;

/// <summary>Creates communicators and runs collective checks.</summary>
public static class Communicator
{
    /// <summary>Whether this process was started as one rank of an MPI job of more than one rank.</summary>
    public static bool LaunchedByMpi => EnvSize() > 1;

    /// <summary>The ranks of this job: MPI when mpirun started more than one rank, otherwise <see cref="SingleProcess"/> (libmpi not loaded).</summary>
    public static ICommunicator FromEnvironment()
    {
        if (!LaunchedByMpi) return SingleProcess.Instance;
        string library = Environment.GetEnvironmentVariable("LORASHARP_MPI_LIBRARY") is { Length: > 0 } l ? l : "libmpi.so.40";
        double timeout = 600;
        if (Environment.GetEnvironmentVariable("LORASHARP_MPI_TIMEOUT") is { Length: > 0 } t &&
            (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out timeout) || timeout <= 0))
            throw new Core.UserErrorException($"LORASHARP_MPI_TIMEOUT='{t}' is not a positive number of seconds.");
        return MpiCommunicator.Start(library, timeout);
    }

    /// <summary>Ranks on this machine (to split its cores between them), 1 outside MPI.</summary>
    public static int LocalRanks =>
        int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : 1;

    private static int EnvSize()
    {
        foreach (var name in new[] { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE" })
            if (int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out int n)) return n;
        return 1;
    }

    /// <summary>
    /// Collective: every rank passes its failure (null when it succeeded). When any rank failed, every rank throws the
    /// same <see cref="RankFailedException"/> naming the lowest failing rank and its message; otherwise returns.
    /// </summary>
    public static void Agree(ICommunicator comm, Exception? failure, string where)
    {
        if (comm.Size == 1)
        {
            if (failure != null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
            return;
        }
        Span<double> flag = [failure != null ? -comm.Rank : -comm.Size];   // max of -rank = the lowest failing rank
        comm.AllReduceMax(flag);
        int failed = -(int)flag[0];
        if (failed >= comm.Size) return;
        throw Report(comm, failed, failure, where);
    }

    /// <summary>Broadcasts rank <paramref name="failedRank"/>'s message and returns the exception every rank throws.</summary>
    internal static RankFailedException Report(ICommunicator comm, int failedRank, Exception? failure, string where)
    {
        string text = failure == null ? "" : App(failure);
        var bytes = Encoding.UTF8.GetBytes(text);
        Span<byte> length = stackalloc byte[4];
        BitConverter.TryWriteBytes(length, comm.Rank == failedRank ? bytes.Length : 0);
        comm.Broadcast(length, failedRank);
        var message = comm.Rank == failedRank ? bytes : new byte[BitConverter.ToInt32(length)];
        comm.Broadcast(message, failedRank);
        return new RankFailedException(failedRank, comm.Size, where, Encoding.UTF8.GetString(message), failure);
    }

    // The message of the exception that says what went wrong (inner exceptions of a type initializer or aggregate).
    private static string App(Exception e)
    {
        while (e is TypeInitializationException or AggregateException && e.InnerException != null) e = e.InnerException;
        return e is Core.UserErrorException ? e.Message : $"{e.GetType().Name}: {e.Message}";
    }

    /// <summary>Compares <paramref name="values"/> across ranks; throws on every rank if any rank holds other values.</summary>
    public static void AgreeSame(ICommunicator comm, ReadOnlySpan<double> values, string what)
    {
        if (comm.Size == 1) return;
        var buffer = new double[2 * values.Length];
        for (int i = 0; i < values.Length; i++) { buffer[i] = values[i]; buffer[values.Length + i] = -values[i]; }
        comm.AllReduceMax(buffer);
        for (int i = 0; i < values.Length; i++)
            if (buffer[i] != -buffer[values.Length + i])
                throw new Core.UserErrorException($"The {comm.Size} ranks do not hold the same {what} (rank {comm.Rank} has {values[i]}, the ranks range from " +
                                                  $"{-buffer[values.Length + i]} to {buffer[i]}). Every rank must read the same model, data and settings " +
                                                  "(and, with --resume, the same output folder: put it on a file system every machine shares).");
    }

    /// <summary>Fails this rank as LORASHARP_FAULT asks (tests of fault handling); does nothing without it.</summary>
    public static void InjectFault(ICommunicator comm, int step)
    {
        if (Environment.GetEnvironmentVariable("LORASHARP_FAULT") is not { Length: > 0 } spec) return;
        var parts = spec.Split(':');
        if (parts.Length != 3 || !int.TryParse(parts[0], out int rank) || !int.TryParse(parts[1], out int at) || parts[2] is not ("throw" or "exit" or "hang"))
            throw new Core.UserErrorException($"LORASHARP_FAULT='{spec}' is not RANK:STEP:throw, RANK:STEP:exit or RANK:STEP:hang.");
        if (rank != comm.Rank || at != step) return;
        if (parts[2] == "exit")
        {
            Console.Error.WriteLine($"rank {rank}: LORASHARP_FAULT: exiting at step {step}");
            Console.Error.Flush();
            Environment.Exit(3);
        }
        if (parts[2] == "hang") Thread.Sleep(Timeout.Infinite);
        throw new Core.UserErrorException($"LORASHARP_FAULT: injected failure at step {step}.");
    }
}

/// <summary>A rank of a distributed run failed; every rank throws this with the same message.</summary>
public sealed class RankFailedException(int failedRank, int size, string where, string message, Exception? inner)
    : Core.UserErrorException($"rank {failedRank} of {size} failed {where}: {message}", inner!)
{
    /// <summary>The rank that failed first.</summary>
    public int FailedRank { get; } = failedRank;
}
