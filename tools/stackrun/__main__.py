from stackrun.cli import main

main()
