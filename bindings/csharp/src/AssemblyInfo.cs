using System.Reflection;
using System.Runtime.CompilerServices;

[assembly: AssemblyTitle("CardBridge")]
[assembly: AssemblyDescription("Membership-card integration for the Alipay+ Mini Program Platform: .NET bindings of the cardbridge native library")]
[assembly: AssemblyVersion("0.1.0.0")]
[assembly: AssemblyFileVersion("0.1.0.0")]
[assembly: AssemblyInformationalVersion("0.1.0")]
// The test suite checks the raw declarations (symbol coverage) and the version check itself.
[assembly: InternalsVisibleTo("CardBridge.Tests")]
