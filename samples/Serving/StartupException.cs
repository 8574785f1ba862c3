using System;

namespace TransformerGen.Samples.Serving;

/// <summary>Why a server cannot start (a wrong option, or a model folder it cannot serve); the program prints the message and exits.</summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);
