import ArgumentParser

/// The `workbook` command: checks the IRQL Workbook's chapters and renders the course.
@main
struct WorkbookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workbook",
        abstract: "Check the IRQL Workbook's chapters and write the report and course pages.",
        subcommands: [CheckCommand.self],
        defaultSubcommand: CheckCommand.self
    )
}
