enum _PSluiceAdapters {}
