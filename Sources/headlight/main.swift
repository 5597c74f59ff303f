import HeadlightCLI

HeadlightMain.run()
