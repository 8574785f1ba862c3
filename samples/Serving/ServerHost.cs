using System;
using Microsoft.AspNetCore.Builder;

namespace TransformerGen.Samples.Serving;

/// <summary>How the sample servers run once their endpoints are mapped.</summary>
public static class ServerHost
{
    /// <summary>Exit code of a server that cannot serve what it was given (see <see cref="StartupException"/>).</summary>
    public const int ExitCannotServe = 3;

    /// <summary>Runs <paramref name="app"/> until it is stopped; a <see cref="StartupException"/> is printed to standard error instead of a stack trace.</summary>
    /// <returns>0, or <see cref="ExitCannotServe"/>.</returns>
    public static int Run(WebApplication app)
    {
        try
        {
            app.Run();
            return 0;
        }
        catch (StartupException e)
        {
            Console.Error.WriteLine(e.Message);
            return ExitCannotServe;
        }
    }
}
