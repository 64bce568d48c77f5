enum _PSluiceApp {}
