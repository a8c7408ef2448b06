fn main() {
    std::process::exit(flowkeep::cli::main());
}
