// Filled in once the Linux OS layer's API is settled (see os/linux/). Until then non-Linux
// builds stop here with a clear message rather than failing deep inside.
compile_error!("mapipc currently builds on Linux only");
