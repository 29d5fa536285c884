// What `lorasharp serve` configures: the folders, where to listen, the access token and the size limits.
namespace LoraSharp.Web;

/// <summary>Options of <see cref="WebServer"/>.</summary>
public sealed record WebServerOptions
{
    /// <summary>Folder of base models: Hugging Face folders and .gguf files (merged models are written here too). Must exist.</summary>
    public string ModelsFolder { get; init; } = "models";

    /// <summary>Folder of datasets (.json, .jsonl, .txt); uploads go here. Created when missing.</summary>
    public string DatasetsFolder { get; init; } = "datasets";

    /// <summary>Folder training writes adapters to (the train verb's --output); created when missing.</summary>
    public string AdaptersFolder { get; init; } = "loras";

    /// <summary>Folder of format files; null = the shipped formats/ folder.</summary>
    public string? FormatsFolder { get; init; }

    /// <summary>TCP port; 0 picks a free one (read <see cref="WebServer.Url"/>).</summary>
    public int Port { get; init; } = 7860;

    /// <summary>IP address to bind; null = 127.0.0.1. Any non-loopback address requires the access token.</summary>
    public string? Listen { get; init; }

    /// <summary>Access token; null = none on loopback, generated for a non-loopback bind. When given, it is always required.</summary>
    public string? Token { get; init; }

    /// <summary>Largest dataset upload in bytes.</summary>
    public long MaxUploadBytes { get; init; } = 256L << 20;

    /// <summary>Largest body of any other request in bytes (JSON requests are small).</summary>
    public long MaxRequestBytes { get; init; } = 1L << 20;

    /// <summary>Where unexpected errors are logged with their stack trace (never sent to the browser); null = stderr.</summary>
    public TextWriter? Log { get; init; }
}
