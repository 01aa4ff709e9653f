//! `funnel`: parses flags and dispatches to the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use funnel_cli::dev::DevArgs;
use funnel_cli::health::HealthArgs;
use funnel_cli::import::ImportArgs;
use funnel_cli::models::{ActivateArgs, ModelArgs, ModelsArgs, RetrainArgs};
use funnel_cli::opportunities::{LeadsArgs, LeakArgs, LogArgs, MoveArgs, ReopenArgs, ShowArgs, WonArgs};
use funnel_cli::report::ReportArgs;
use funnel_cli::simulate::SimulateArgs;
use funnel_cli::token::{TokenArgs, TokenCommand};
use funnel_cli::{CliError, Client, ConnectArgs, Format, dev, emit, import, models, opportunities, simulate};

/// The funnel command: pipelines, leads and models over gRPC.
#[derive(Debug, Parser)]
#[command(name = "funnel", version, about)]
struct Cli {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service and the scorer on an embedded SQLite file, with demo data.
    Dev(DevArgs),
    /// Generate a realistic funnel history; write it or load it into the server.
    Simulate(SimulateArgs),
    /// Bulk-load historical opportunities (JSON Lines, CSV or the CRM data set).
    Import(ImportArgs),
    /// Open leads, riskiest first.
    Leads(LeadsArgs),
    /// One opportunity: details, history, activities and its score.
    Show(ShowArgs),
    /// Move an opportunity to a stage.
    Move(MoveArgs),
    /// Close an opportunity as leaked.
    Leak(LeakArgs),
    /// Close an opportunity as won (moves it to the last stage).
    Won(WonArgs),
    /// Reopen a won or leaked opportunity.
    Reopen(ReopenArgs),
    /// Log a call, email, meeting or note.
    Log(LogArgs),
    /// Trained models with their quality.
    Models(ModelsArgs),
    /// One model: metrics, calibration, coefficients.
    Model(ModelArgs),
    /// Queue a retraining job.
    Retrain(RetrainArgs),
    /// Make a model the active one of its pipeline.
    Activate(ActivateArgs),
    /// Draw a pipeline's funnel: conversion, leakage and time per stage.
    Report(ReportArgs),
    /// Ask the server's gRPC health endpoint; fails unless SERVING.
    Health(HealthArgs),
    /// Make a token and its hash for the service's tokens file (offline).
    Token(TokenArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = if cli.json { Format::Json } else { Format::Human };
    match run(cli, format).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            match format {
                Format::Human => eprintln!("{}", error.to_human()),
                Format::Json => eprintln!("{}", error.to_json()),
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, format: Format) -> Result<(), CliError> {
    // Bars only for a person watching; they draw on stderr.
    let progress = format == Format::Human && std::io::stderr().is_terminal();
    if let Command::Dev(args) = &cli.command {
        return dev::run(args, progress).await;
    }
    if let Command::Simulate(args) = &cli.command
        && !args.load
    {
        emit(&simulate::run(None, args, progress).await?, format);
        return Ok(());
    }
    if let Command::Token(args) = &cli.command {
        match &args.command {
            TokenCommand::New(new) => emit(&funnel_cli::token::new_token(new)?, format),
            TokenCommand::Hash => emit(&funnel_cli::token::hash_stdin()?, format),
        }
        return Ok(());
    }
    if let Command::Health(args) = &cli.command {
        emit(&funnel_cli::health::health(&cli.connect, args).await?, format);
        return Ok(());
    }
    let client = Client::connect(&cli.connect).await?;
    match &cli.command {
        Command::Dev(_) => {}
        Command::Simulate(args) => emit(&simulate::run(Some(&client), args, progress).await?, format),
        Command::Import(args) => emit(&import::import(&client, args, progress).await?, format),
        Command::Leads(args) => emit(&opportunities::leads(&client, args).await?, format),
        Command::Show(args) => emit(&opportunities::show(&client, args).await?, format),
        Command::Move(args) => emit(&opportunities::move_to(&client, args).await?, format),
        Command::Leak(args) => emit(&opportunities::leak(&client, args).await?, format),
        Command::Won(args) => emit(&opportunities::won(&client, args).await?, format),
        Command::Reopen(args) => emit(&opportunities::reopen(&client, args).await?, format),
        Command::Log(args) => emit(&opportunities::log(&client, args).await?, format),
        Command::Models(args) => emit(&models::models(&client, args).await?, format),
        Command::Model(args) => emit(&models::model(&client, args).await?, format),
        Command::Retrain(args) => emit(&models::retrain(&client, args, progress).await?, format),
        Command::Activate(args) => emit(&models::activate(&client, args).await?, format),
        Command::Report(args) => emit(&funnel_cli::report::report(&client, args).await?, format),
        Command::Health(_) | Command::Token(_) => {}
    }
    Ok(())
}
