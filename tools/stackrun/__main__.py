from stackrun.cli import command

command()
