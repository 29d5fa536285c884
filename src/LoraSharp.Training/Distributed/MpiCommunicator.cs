// MPI_COMM_WORLD through Open MPI's C API (libmpi.so.40), bound at run time: the library is loaded only when a job was
// started by mpirun (Communicator.FromEnvironment), never in a one-process run. Open MPI's predefined handles are
// exported global objects, not integer #defines as in MPICH: MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT
// &ompi_mpi_float, MPI_SUM &ompi_mpi_op_sum, so their addresses come from NativeLibrary.GetExport. MPI_IN_PLACE is
// (void*)1 and MPI_STATUS_IGNORE is NULL (mpi.h of Open MPI 4 and 5).
// Every collective is non-blocking (MPI_Iallreduce/MPI_Ibcast) and waited for with MPI_Test against a deadline, so a
// rank whose peer hangs or died reports it and ends the job (MPI_Abort) instead of waiting forever:
// LORASHARP_MPI_TIMEOUT seconds (default 600). Calls come from one thread at a time (MPI_THREAD_SERIALIZED).
// Not here: MPICH/Intel MPI (other handle ABI), point-to-point messages.
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace LoraSharp.Training.Distributed;

/// <summary>The ranks of an Open MPI job (MPI_COMM_WORLD).</summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private const int MpiSuccess = 0;
    private const int ThreadSerialized = 2;   // MPI_THREAD_SERIALIZED in Open MPI's mpi.h
    private const int MaxCount = 1 << 28;     // elements per native call (count is an int)

    private readonly nint _lib, _comm, _float, _double, _byte, _sum, _max;
    private readonly delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int> _iallreduce;
    private readonly delegate* unmanaged<nint, int, nint, int, nint, nint*, int> _ibcast;
    private readonly delegate* unmanaged<nint*, int*, nint, int> _test;
    private readonly delegate* unmanaged<nint, int, int> _abort;
    private readonly delegate* unmanaged<int> _finalize;
    private readonly long _timeoutTicks;
    private bool _disposed;

    private MpiCommunicator(string library, double timeoutSeconds)
    {
        try
        {
            _lib = NativeLibrary.Load(library);
        }
        catch (DllNotFoundException e)
        {
            throw new Core.UserErrorException($"This run was started by mpirun but {library} (Open MPI) cannot be loaded: {e.Message} " +
                                              "Install it with `apt-get install -y openmpi-bin libopenmpi-dev`, or set LORASHARP_MPI_LIBRARY to its path.", e);
        }
        nint Export(string name) => NativeLibrary.TryGetExport(_lib, name, out var a) ? a
            : throw new Core.UserErrorException($"{library} has no symbol '{name}': LoraSharp binds Open MPI 4 or 5 (libmpi.so.40); other MPI libraries are not supported.");
        _comm = Export("ompi_mpi_comm_world");
        _float = Export("ompi_mpi_float");
        _double = Export("ompi_mpi_double");
        _byte = Export("ompi_mpi_byte");
        _sum = Export("ompi_mpi_op_sum");
        _max = Export("ompi_mpi_op_max");
        _iallreduce = (delegate* unmanaged<nint, nint, int, nint, nint, nint, nint*, int>)Export("MPI_Iallreduce");
        _ibcast = (delegate* unmanaged<nint, int, nint, int, nint, nint*, int>)Export("MPI_Ibcast");
        _test = (delegate* unmanaged<nint*, int*, nint, int>)Export("MPI_Test");
        _abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        _finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        var initThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Export("MPI_Init_thread");
        var rank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        var size = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        _timeoutTicks = (long)(timeoutSeconds * Stopwatch.Frequency);

        int provided, r, n;
        Check(initThread(null, null, ThreadSerialized, &provided), "MPI_Init_thread");
        Check(rank(_comm, &r), "MPI_Comm_rank");
        Check(size(_comm, &n), "MPI_Comm_size");
        Rank = r;
        Size = n;
    }

    /// <summary>Initialises MPI (once per process) from <paramref name="library"/> with a collective timeout in seconds.</summary>
    public static MpiCommunicator Start(string library = "libmpi.so.40", double timeoutSeconds = 600) => new(library, timeoutSeconds);

    /// <inheritdoc/>
    public int Rank { get; }

    /// <inheritdoc/>
    public int Size { get; }

    /// <inheritdoc/>
    public void AllReduceSum(Span<float> values)
    {
        fixed (float* p = values) AllReduce((nint)p, values.Length, sizeof(float), _float, _sum, "all-reduce (sum) of the gradients");
    }

    /// <inheritdoc/>
    public void AllReduceSum(Span<double> values)
    {
        fixed (double* p = values) AllReduce((nint)p, values.Length, sizeof(double), _double, _sum, "all-reduce (sum)");
    }

    /// <inheritdoc/>
    public void AllReduceMax(Span<double> values)
    {
        fixed (double* p = values) AllReduce((nint)p, values.Length, sizeof(double), _double, _max, "all-reduce (max)");
    }

    /// <inheritdoc/>
    public void Broadcast(Span<byte> data, int root)
    {
        fixed (byte* p = data)
        {
            for (int start = 0; start < data.Length || start == 0; start += MaxCount)
            {
                int count = Math.Min(MaxCount, data.Length - start);
                nint request;
                Check(_ibcast((nint)(p + start), count, _byte, root, _comm, &request), "MPI_Ibcast");
                Wait(&request, "broadcast");
                if (data.Length == 0) break;
            }
        }
    }

    private void AllReduce(nint buffer, int length, int elementSize, nint type, nint op, string what)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        for (int start = 0; start < length || start == 0; start += MaxCount)
        {
            int count = Math.Min(MaxCount, length - start);
            nint request;
            Check(_iallreduce(1 /* MPI_IN_PLACE */, buffer + (nint)start * elementSize, count, type, op, _comm, &request), "MPI_Iallreduce");
            Wait(&request, what);
            if (length == 0) break;
        }
    }

    // Polls the request: spins (yielding) for the first 2 ms, then sleeps 1 ms between tests, until the deadline.
    private void Wait(nint* request, string what)
    {
        long start = Stopwatch.GetTimestamp();
        long yieldUntil = start + Stopwatch.Frequency / 500;
        int done = 0;
        while (true)
        {
            Check(_test(request, &done, 0), "MPI_Test");
            if (done != 0) return;
            long now = Stopwatch.GetTimestamp();
            if (now - start > _timeoutTicks)
            {
                Console.Error.WriteLine($"error: rank {Rank} of {Size}: no answer from the other ranks for {_timeoutTicks / (double)Stopwatch.Frequency:F0} s in the {what} " +
                                        "(a rank hangs or died); ending the job. The last checkpoint is intact; continue with --resume. " +
                                        "LORASHARP_MPI_TIMEOUT sets the wait in seconds.");
                Console.Error.Flush();
                Abort(3);
            }
            if (now < yieldUntil) Thread.Yield();
            else Thread.Sleep(1);
        }
    }

    private void Check(int code, string call)
    {
        if (code != MpiSuccess) throw new InvalidOperationException($"{call} failed with MPI error code {code} on rank {Rank}.");
    }

    /// <inheritdoc/>
    public void Abort(int exitCode)
    {
        _abort(_comm, exitCode);
        Environment.Exit(exitCode);   // MPI_Abort does not return; this is for a library that does
    }

    /// <summary>MPI_Finalize (collective: every rank must reach it).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        // A timed barrier first: MPI_Finalize itself has no timeout, so a rank that never arrives would hold the others.
        double arrived = 1;
        AllReduce((nint)(&arrived), 1, sizeof(double), _double, _sum, "barrier before MPI_Finalize");
        _disposed = true;
        _finalize();
    }
}
