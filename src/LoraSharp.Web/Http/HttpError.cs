// An error the web layer raises itself with the HTTP status it means (409 busy or exists, 413 too large, 415 not
// JSON); its message is shown to the user as it is.
namespace LoraSharp.Web.Http;

/// <summary>A request that cannot be served, with its status code and a message for the user.</summary>
internal sealed class HttpError(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}
